//! Fuzz target: JSON request bodies as the API server reads them: the decoder, the walk that
//! finds repeated keys, and the check of the JSON types against the built-in kind's schema.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pods = apiserver::resources::find("", "v1", "pods");
    let _ = apiserver::duplicate_fields(data);
    if let Ok(object) = apiserver::decode_body("application/json", data, pods) {
        let r = common::resource_of(&object);
        let _ = common::OPENAPI.type_mismatch(r.group, r.version, r.kind, &object);
        let _ = common::OPENAPI.unknown_fields(r.group, r.version, r.kind, &object);
    }
});
