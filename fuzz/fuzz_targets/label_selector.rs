//! Fuzz target: label selectors, as `?labelSelector=` text and as `matchLabels` /
//! `matchExpressions` objects, matched against a Pod's labels.

#![no_main]

mod common;

use apiserver::selectors::LabelSelector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let labels = common::POD["metadata"]["labels"].as_object();
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(selector) = LabelSelector::parse(text)
    {
        selector.matches(labels);
    }
    if let Ok(object) = serde_json::from_slice(data)
        && let Ok(selector) = LabelSelector::from_object(&object)
    {
        selector.matches(labels);
    }
});
