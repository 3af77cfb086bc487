//! Fuzz target: strategic merge patches (`application/strategic-merge-patch+json`) walked
//! with the merge rules of the target's built-in kind (Pod when it names none).
//! Input: `[target JSON] NUL patch`.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (target, rest) = common::target_and_rest(data);
    let Ok(patch) = apiserver::decode_body("application/strategic-merge-patch+json", rest, None)
    else {
        return;
    };
    let r = common::resource_of(&target);
    let schema = common::OPENAPI.kind_schema(r.group, r.version, r.kind);
    let _ = apiserver::patch::strategic_merge_patch(&target, &patch, schema);
});
