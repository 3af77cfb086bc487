//! jq for Stage selector keys and `*From` expressions: the workspace's `jq` crate (jaq with a
//! fast path for plain paths), re-exported under the name the Stage code uses.

pub use ::jq::{Query, comparable};
