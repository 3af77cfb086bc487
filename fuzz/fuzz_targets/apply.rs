//! Fuzz target: server-side apply's merge of an applied configuration into a live object, the
//! fields it claims and the changes it makes, with the live object's built-in kind's list types.
//! Input: `[live JSON] NUL configuration (YAML or JSON)`.

#![no_main]

mod common;

use apiserver::fieldmanager::{self, Schema};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (live, rest) = common::target_and_rest(data);
    let Ok(config) = apiserver::decode_body("application/apply-patch+yaml", rest, None) else {
        return;
    };
    let r = common::resource_of(&live);
    let schema = Schema::builtin(common::OPENAPI.kind_schema(r.group, r.version, r.kind));
    let merged = fieldmanager::merge(&schema, &live, &config);
    let _ = fieldmanager::applied_fields(&schema, &config);
    let _ = fieldmanager::compare(&schema, &live, &merged);
});
