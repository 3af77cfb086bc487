//! Fuzz target: RFC 6902 JSON patches (`application/json-patch+json`) with the server's
//! operation, copy-size and nesting limits. Input: `[target JSON] NUL patch`.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (target, rest) = common::target_and_rest(data);
    let Ok(patch) = apiserver::decode_body("application/json-patch+json", rest, None) else {
        return;
    };
    let _ = apiserver::patch::json_patch(&target, &patch);
});
