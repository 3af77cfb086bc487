//! Fuzz target: RFC 7386 JSON merge patches (`application/merge-patch+json`).
//! Input: `[target JSON] NUL patch`.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (target, rest) = common::target_and_rest(data);
    let Ok(patch) = apiserver::decode_body("application/merge-patch+json", rest, None) else {
        return;
    };
    let _ = apiserver::patch::merge_patch(&target, &patch);
});
