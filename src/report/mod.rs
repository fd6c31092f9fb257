//! What runs measured, and how it is printed: `Serialize` structs (the JSON contract of
//! spec/scenario.md) and their text rendering.
pub mod assert;
pub mod baseline;
pub mod export;
pub mod html;
pub mod markdown;
pub mod plot;
pub mod qos;
pub mod run;
pub mod text;
pub mod warning;
