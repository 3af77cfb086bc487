//! Fuzz target: the Stage jq compiler (selector keys, `*From` expressions) and its evaluation
//! on a Pod.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(query) = jq::Query::parse(text) {
        let _ = query.eval(&common::POD);
        let _ = query.first(&common::POD);
    }
});
