//! The ELB API surface: request types, reading a JSON body, validation, defaults, responses.
pub mod types;
