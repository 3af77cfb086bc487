//! Fuzz target: YAML request bodies (`application/yaml`, `application/apply-patch+yaml`) as the
//! API server decodes them into JSON values.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pods = apiserver::resources::find("", "v1", "pods");
    if let Ok(object) = apiserver::decode_body("application/yaml", data, pods) {
        let _ = serde_json::to_vec(&object);
    }
});
