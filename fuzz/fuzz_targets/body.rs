//! Fuzz target: any bytes as a CreateMasterSlavePool request body, through the reader and every
//! validation rule, then (when valid) the typed pool and the 201 response; an invalid body gets
//! the API's error body. Problems are fine; a panic is a bug.
#![no_main]

use elbsim::api::{self, CheckOptions, CreateOptions, Pool};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for strict in [false, true] {
        let checked = api::check_bytes(data, CheckOptions { strict });
        match (&checked.request, checked.errors.first()) {
            (Some(req), None) => {
                // A body that validates must convert and answer: both are promised by the API.
                let pool = Pool::from_request(req);
                assert!(pool.is_ok(), "valid body did not convert: {pool:?}");
                let opts = CreateOptions {
                    seed: 1,
                    project_id: None,
                    now_unix_s: 1_616_722_392,
                };
                let _ = api::create_response(req, &opts);
            }
            (_, Some(first)) => {
                let _ = api::api_error_body(first, &api::request_id(1));
            }
            (None, None) => {}
        }
    }
});
