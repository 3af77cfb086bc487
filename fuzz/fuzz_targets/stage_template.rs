//! Fuzz target: the Stage Go-template compiler and its execution on a Pod, the rendered text
//! read back as YAML.

#![no_main]

mod common;

#[allow(dead_code)]
#[path = "../../crates/kwok/src/stage/template.rs"]
mod template;

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(template) = template::Template::parse(text) {
        let _ = template.render(&common::POD, Arc::new(template::NoFuncs), "default/web-0");
    }
});
