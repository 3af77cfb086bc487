//! `kwokctl config convert [files...] [-w]`: rewrites configuration documents in the latest
//! version of their kind (`config.kwok.x-k8s.io/v1alpha1` for kwokctl's and kwok's own
//! configuration, `kwok.x-k8s.io/v1alpha1` for the simulation kinds), dropping documents of
//! kinds it does not know.

use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

use crate::cli::ConfigConvertArgs;
use crate::config::{parse_documents, render_documents};
use crate::context::Context;

const CONFIG_GROUP: &str = "config.kwok.x-k8s.io/v1alpha1";
const KWOK_GROUP: &str = "kwok.x-k8s.io/v1alpha1";

/// Every kind a configuration file may hold, with the apiVersion it is written in.
const LATEST: &[(&str, &str)] = &[
    ("KwokConfiguration", CONFIG_GROUP),
    ("KwokctlConfiguration", CONFIG_GROUP),
    ("KwokctlResource", CONFIG_GROUP),
    ("Stage", KWOK_GROUP),
    ("Attach", KWOK_GROUP),
    ("ClusterAttach", KWOK_GROUP),
    ("Exec", KWOK_GROUP),
    ("ClusterExec", KWOK_GROUP),
    ("Logs", KWOK_GROUP),
    ("ClusterLogs", KWOK_GROUP),
    ("PortForward", KWOK_GROUP),
    ("ClusterPortForward", KWOK_GROUP),
    ("ResourceUsage", KWOK_GROUP),
    ("ClusterResourceUsage", KWOK_GROUP),
    ("Metric", KWOK_GROUP),
];

/// The groups whose documents are converted; anything else is not a configuration document.
const GROUPS: &[&str] = &["config.kwok.x-k8s.io", "kwok.x-k8s.io"];

pub fn convert(ctx: &Context, args: &ConfigConvertArgs) -> anyhow::Result<()> {
    let mut first = true;
    for path in &args.files {
        let docs = match load(path) {
            Ok(docs) => docs,
            Err(e) => {
                tracing::warn!(path = %path.display(), err = %format!("{e:#}"), "Failed to load config file");
                continue;
            }
        };
        if docs.is_empty() {
            tracing::warn!(path = %path.display(), "No resources found in config file");
            continue;
        }
        let text = render_documents(&docs)?;
        if !args.write {
            if !first {
                println!("---");
            }
            first = false;
            print!("{text}");
            continue;
        }
        if ctx.dry_run {
            crate::dryrun::say(format!("cat <<EOF >{}\n{text}EOF", path.display()));
            continue;
        }
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// Reads one file and converts its documents.
fn load(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let docs = parse_documents(&text)?;
    Ok(docs.into_iter().filter_map(latest).collect())
}

/// One document in its kind's latest version, or `None` (with upstream's warning) when the kind
/// is not a configuration kind.
fn latest(mut doc: Value) -> Option<Value> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
    let target = LATEST.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v);
    let kind = kind.as_str();
    let Some(target) = target.filter(|_| GROUPS.contains(&group)) else {
        tracing::warn!(kind, apiVersion = %api_version, "Unsupported type");
        return None;
    };
    let obj = doc.as_object_mut()?;
    // apiVersion and kind lead, as upstream writes them.
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), target.into());
    out.insert("kind".into(), kind.to_string().into());
    for (k, v) in std::mem::take(obj) {
        if k != "apiVersion" && k != "kind" {
            out.insert(k, v);
        }
    }
    Some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_move_to_their_latest_version() {
        let stage = latest(json!({"kind": "Stage", "apiVersion": "kwok.x-k8s.io/v1alpha1", "metadata": {"name": "s"}})).unwrap();
        assert_eq!(stage["apiVersion"], "kwok.x-k8s.io/v1alpha1");
        let conf =
            latest(json!({"kind": "KwokConfiguration", "apiVersion": "kwok.x-k8s.io/v1alpha1"}))
                .unwrap();
        assert_eq!(conf["apiVersion"], "config.kwok.x-k8s.io/v1alpha1");
        assert!(latest(json!({"kind": "Pod", "apiVersion": "v1"})).is_none());
        assert!(latest(json!({"kind": "Stage", "apiVersion": "example.com/v1"})).is_none());
    }
}
