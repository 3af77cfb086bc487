//! Fuzz target: the Go duration parsers: Stage delays (`kwok`), kwokctl's flags and config,
//! and protobuf `Duration` fields (`kube-proto`), with its formatter on what parses.

#![no_main]

#[allow(dead_code)]
#[path = "../../crates/kwokctl/src/duration.rs"]
mod kwokctl_duration;
#[allow(dead_code)]
#[path = "../../crates/kwok/src/stage/duration.rs"]
mod stage_duration;
#[allow(dead_code)]
#[path = "../../crates/kube-proto/src/timefmt.rs"]
mod timefmt;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = stage_duration::parse_go_duration(text);
    let _ = kwokctl_duration::parse(text);
    if let Ok(nanos) = timefmt::parse_go_duration(text) {
        let formatted = timefmt::format_go_duration(nanos);
        assert_eq!(
            timefmt::parse_go_duration(&formatted),
            Ok(nanos),
            "{text:?}"
        );
    }
});
