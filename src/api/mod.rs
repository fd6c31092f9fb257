//! The ELB API surface: request types, reading a JSON body, validation, defaults, responses.
//!
//! * [`types`]: the request as the user wrote it (`POST /v3/{project_id}/elb/master-slave-pools`).
//! * [`read`]: bytes -> JSON -> [`types::CreateRequest`], collecting every shape problem.
//! * [`validate`]: every rule of `spec/api.md`, errors and warnings; [`check_bytes`] and
//!   [`check_value`] are the entry points.
//! * [`pool`]: the typed, validated pool the simulator consumes ([`Pool::from_request`]).
//! * [`response`]: the 201 body of a create and the API's error body.
//! * [`problem`]: one finding, `{path, rule, message}`.
pub mod pool;
pub mod problem;
pub mod read;
pub mod response;
pub mod types;
pub mod validate;

pub use pool::Pool;
pub use problem::{Problem, Severity};
pub use read::parse_json;
pub use response::{api_error_body, create_response, format_api_time, request_id, CreateOptions};
pub use validate::{check_bytes, check_value, validate_request, CheckOptions, Checked};
