//! Fuzz target: resource quantities (`100m`, `1.5Gi`, `1e3`) as the scheduler, the
//! ResourceQuota and the PersistentVolume controllers read them from objects.

#![no_main]

#[allow(dead_code)]
#[path = "../../crates/controllers/src/scheduler/quantity.rs"]
mod quantity;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = quantity::parse_milli(text);
    let _ = quantity::parse_milli_i64(text);
    let _ = quantity::parse_units(text);
});
