//! Fuzz target: `?fieldSelector=` text, checked against the fields pods support and matched
//! against a Pod.

#![no_main]

mod common;

use apiserver::selectors::FieldSelector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(selector) = FieldSelector::parse(text) else {
        return;
    };
    let pods = apiserver::resources::find("", "v1", "pods").expect("pods are built in");
    if selector.check(pods, "", text).is_ok() {
        selector.matches(pods, &common::POD);
    }
    let _ = selector.exact_name();
});
