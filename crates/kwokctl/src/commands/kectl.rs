//! `kwokctl kectl get|put|delete|snapshot`: the cluster's stored objects by their store keys,
//! in kube-apiserver's key layout (`/registry/pods/<namespace>/<name>`).
//!
//! A `binary` cluster keeps its objects in a real etcd: kectl reads and writes the keys there
//! with `etcdctl`, bypassing the API server as upstream's kectl does. An `embedded` cluster's
//! store is owned by the running `kwok apiserver` process (its write-ahead log cannot be shared),
//! so there kectl goes through the API server: the object served is the object stored (JSON,
//! the store's encoding), and writes pass the API server's validation and admission.

use std::io::Read as _;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use serde_json::Value;

use crate::apiclient::{ApiResource, Client};
use crate::cli::{
    KectlGetArgs, KectlPutArgs, KectlSnapshotArgs, SnapshotRestoreArgs, SnapshotSaveArgs,
};
use crate::context::Context;
use crate::runtime::{Cluster, RuntimeKind, binary};

const ETCDCTL_TIMEOUT: Duration = Duration::from_secs(60);

/// kube-apiserver's historical key names: `(group, resource) -> path under the prefix`.
const KEY_NAMES: &[(&str, &str, &str)] = &[
    ("", "nodes", "minions"),
    ("", "services", "services/specs"),
    ("", "endpoints", "services/endpoints"),
    ("", "replicationcontrollers", "controllers"),
    ("networking.k8s.io", "ingresses", "ingress"),
];

/// Built-in groups whose objects are stored under `<group>/<resource>`.
const GROUP_KEYED: &[&str] = &[
    "apiregistration.k8s.io",
    "events.k8s.io",
    "apiextensions.k8s.io",
];

/// The store key of one object, or with `name` empty the prefix of a collection (in
/// `namespace` when given).
fn store_key(prefix: &str, resource: &ApiResource, namespace: Option<&str>, name: &str) -> String {
    let group = resource.group();
    let builtin = group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io");
    let path = match KEY_NAMES
        .iter()
        .find(|(g, r, _)| *g == group && *r == resource.plural)
    {
        Some((_, _, key)) => key.to_string(),
        None if builtin && !GROUP_KEYED.contains(&group) => resource.plural.clone(),
        None => format!("{group}/{}", resource.plural),
    };
    let mut key = format!("{}/{path}/", prefix.trim_end_matches('/'));
    if resource.namespaced {
        match namespace {
            Some(ns) => {
                key.push_str(ns);
                key.push('/');
            }
            None if !name.is_empty() => key.push_str("default/"),
            None => {}
        }
    }
    key.push_str(name);
    key
}

/// Where the objects are: etcd (binary runtime) or the API server (embedded).
enum Backend {
    Etcd { etcdctl: String, endpoint: String },
    Api,
}

struct Target {
    cluster: Cluster,
    client: Client,
    backend: Backend,
    prefix: String,
}

fn target(ctx: &Context) -> anyhow::Result<Target> {
    let cluster = super::load_existing(ctx)?;
    let client = Client::from_kubeconfig(&cluster.paths.kubeconfig())?;
    let backend = match RuntimeKind::parse(cluster.runtime_name()) {
        Some(RuntimeKind::Binary) => Backend::Etcd {
            etcdctl: binary::etcd_tool(ctx, &cluster.config.components, "etcdctl")
                .display()
                .to_string(),
            endpoint: super::etcdctl::etcd_endpoint(&cluster)?,
        },
        Some(RuntimeKind::Embedded) => Backend::Api,
        _ => bail!(
            "kectl supports clusters of the embedded and binary runtimes (cluster runtime is {:?})",
            cluster.runtime_name()
        ),
    };
    let prefix = match cluster.config.options.etcd_prefix.as_str() {
        "" => crate::config::DEFAULT_ETCD_PREFIX.to_string(),
        p => p.to_string(),
    };
    Ok(Target {
        cluster,
        client,
        backend,
        prefix,
    })
}

fn resolve(client: &Client, word: &str) -> anyhow::Result<ApiResource> {
    client
        .resolve(word)?
        .ok_or_else(|| anyhow!("the server doesn't have a resource type {word:?}"))
}

pub fn get(ctx: &Context, args: &KectlGetArgs) -> anyhow::Result<()> {
    let format = args.output.as_str();
    if !matches!(format, "json" | "yaml" | "key") {
        bail!("unsupported output format {format:?}: use json, yaml or key");
    }
    let t = target(ctx)?;
    let resource = resolve(&t.client, &args.resource)?;
    let name = args.name.as_deref().unwrap_or("");
    let key = store_key(&t.prefix, &resource, args.namespace.as_deref(), name);
    let found = read(&t, &resource, args, &key)?;
    if found.is_empty() && !name.is_empty() {
        bail!("{key} not found");
    }
    print_objects(&found, format)
}

/// The stored objects under `key` (one, or every one below a prefix), with their keys.
fn read(
    t: &Target,
    resource: &ApiResource,
    args: &KectlGetArgs,
    key: &str,
) -> anyhow::Result<Vec<(String, Value)>> {
    match &t.backend {
        Backend::Etcd { etcdctl, endpoint } => {
            let mut argv = vec!["--endpoints", endpoint, "get", key, "-w", "json"];
            if args.name.is_none() {
                argv.push("--prefix");
            }
            let out = crate::exec::run(etcdctl, &argv, &[("ETCDCTL_API", "3")], ETCDCTL_TIMEOUT)
                .map_err(|e| anyhow!("{e}"))?;
            decode_etcd(&out.stdout)
        }
        Backend::Api => {
            let ns = args
                .namespace
                .as_deref()
                .or(Some("default").filter(|_| args.name.is_some()));
            let items = match &args.name {
                Some(name) => {
                    let resp = t.client.get(&resource.item(ns, name))?;
                    match resp.status {
                        404 => Vec::new(),
                        _ if resp.ok() => vec![resp.json()],
                        _ => bail!("{}", resp.message()),
                    }
                }
                None => t
                    .client
                    .list_all(resource, args.namespace.as_deref(), None, 500)?,
            };
            Ok(items
                .into_iter()
                .map(|obj| {
                    let meta = &obj["metadata"];
                    let key = store_key(
                        &t.prefix,
                        resource,
                        meta["namespace"].as_str(),
                        meta["name"].as_str().unwrap_or(""),
                    );
                    (key, obj)
                })
                .collect())
        }
    }
}

/// `etcdctl get -w json`: base64 keys and values.
fn decode_etcd(stdout: &str) -> anyhow::Result<Vec<(String, Value)>> {
    let doc: Value = serde_json::from_str(stdout).context("decode etcdctl output")?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = Vec::new();
    for kv in doc["kvs"].as_array().into_iter().flatten() {
        let key = b64
            .decode(kv["key"].as_str().unwrap_or(""))
            .context("decode key")?;
        let value = b64
            .decode(kv["value"].as_str().unwrap_or(""))
            .context("decode value")?;
        let value = serde_json::from_slice(&value)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&value).into_owned()));
        out.push((String::from_utf8_lossy(&key).into_owned(), value));
    }
    Ok(out)
}

fn print_objects(found: &[(String, Value)], format: &str) -> anyhow::Result<()> {
    for (i, (key, obj)) in found.iter().enumerate() {
        match format {
            "key" => println!("{key}"),
            "json" => println!("{}", serde_json::to_string_pretty(obj)?),
            _ => {
                if i > 0 {
                    println!("---");
                }
                print!(
                    "{}",
                    crate::config::render_documents(std::slice::from_ref(obj))?
                );
            }
        }
    }
    Ok(())
}

pub fn put(ctx: &Context, args: &KectlPutArgs) -> anyhow::Result<()> {
    let text = if args.filename == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("read stdin")?;
        s
    } else {
        std::fs::read_to_string(&args.filename)
            .with_context(|| format!("read {}", args.filename))?
    };
    let docs = crate::config::parse_documents(&text)?;
    if docs.is_empty() {
        bail!("no objects in {}", args.filename);
    }
    let t = target(ctx)?;
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().unwrap_or("");
        let kind = doc["kind"].as_str().unwrap_or("");
        let resource = t.client.resource_for_kind(api_version, kind)?;
        let meta = &doc["metadata"];
        let name = meta["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| anyhow!("object has no metadata.name"))?;
        let namespace = meta["namespace"]
            .as_str()
            .or(Some("default").filter(|_| resource.namespaced));
        let key = store_key(&t.prefix, &resource, namespace, name);
        write(&t, &resource, namespace, name, &key, &doc)?;
        println!("{key}");
    }
    Ok(())
}

fn write(
    t: &Target,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
    key: &str,
    doc: &Value,
) -> anyhow::Result<()> {
    match &t.backend {
        Backend::Etcd { etcdctl, endpoint } => {
            let value = serde_json::to_string(doc)?;
            crate::exec::run(
                etcdctl,
                &["--endpoints", endpoint, "put", key, &value],
                &[("ETCDCTL_API", "3")],
                ETCDCTL_TIMEOUT,
            )
            .map_err(|e| anyhow!("{e}"))?;
            Ok(())
        }
        Backend::Api => {
            let mut doc = doc.clone();
            if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            let item = resource.item(namespace, name);
            let current = t.client.get(&item)?;
            let resp = if current.ok() {
                let rv = current.json()["metadata"]["resourceVersion"].clone();
                doc["metadata"]["resourceVersion"] = rv;
                t.client.request("PUT", &item, Some(&doc))?
            } else {
                t.client
                    .request("POST", &resource.collection(namespace), Some(&doc))?
            };
            if !resp.ok() {
                bail!("put {key}: {}", resp.message());
            }
            Ok(())
        }
    }
}

pub fn delete(ctx: &Context, args: &KectlGetArgs) -> anyhow::Result<()> {
    let t = target(ctx)?;
    let resource = resolve(&t.client, &args.resource)?;
    let name = args.name.as_deref().unwrap_or("");
    let key = store_key(&t.prefix, &resource, args.namespace.as_deref(), name);
    let found = read(&t, &resource, args, &key)?;
    if found.is_empty() && !name.is_empty() {
        bail!("{key} not found");
    }
    for (key, obj) in &found {
        match &t.backend {
            Backend::Etcd { etcdctl, endpoint } => {
                crate::exec::run(
                    etcdctl,
                    &["--endpoints", endpoint, "del", key],
                    &[("ETCDCTL_API", "3")],
                    ETCDCTL_TIMEOUT,
                )
                .map_err(|e| anyhow!("{e}"))?;
            }
            Backend::Api => {
                let meta = &obj["metadata"];
                let item = resource.item(
                    meta["namespace"].as_str(),
                    meta["name"].as_str().unwrap_or(""),
                );
                let resp =
                    t.client
                        .request("DELETE", &format!("{item}?gracePeriodSeconds=0"), None)?;
                if !resp.ok() && resp.status != 404 {
                    bail!("delete {key}: {}", resp.message());
                }
            }
        }
        println!("{key}");
    }
    let _ = &t.cluster;
    Ok(())
}

pub fn snapshot_save(ctx: &Context, args: &KectlSnapshotArgs) -> anyhow::Result<()> {
    let save = SnapshotSaveArgs {
        path: args.path.clone(),
        format: "etcd".into(),
        filter: Vec::new(),
    };
    super::snapshot::save(ctx, &save)
}

pub fn snapshot_restore(ctx: &Context, args: &KectlSnapshotArgs) -> anyhow::Result<()> {
    let restore = SnapshotRestoreArgs {
        path: args.path.clone(),
        format: "etcd".into(),
        filter: Vec::new(),
    };
    super::snapshot::restore(ctx, &restore)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(api_version: &str, plural: &str, namespaced: bool) -> ApiResource {
        ApiResource {
            api_version: api_version.into(),
            kind: String::new(),
            plural: plural.into(),
            singular: String::new(),
            namespaced,
            short_names: Vec::new(),
        }
    }

    #[test]
    fn keys_follow_kube_apiserver_layout() {
        let p = "/registry";
        assert_eq!(
            store_key(p, &res("v1", "pods", true), Some("ns"), "web"),
            "/registry/pods/ns/web"
        );
        assert_eq!(
            store_key(p, &res("v1", "nodes", false), None, "n1"),
            "/registry/minions/n1"
        );
        assert_eq!(
            store_key(p, &res("v1", "services", true), Some("d"), "s"),
            "/registry/services/specs/d/s"
        );
        assert_eq!(
            store_key(p, &res("apps/v1", "deployments", true), None, ""),
            "/registry/deployments/"
        );
        assert_eq!(
            store_key(
                p,
                &res("kwok.x-k8s.io/v1alpha1", "stages", false),
                None,
                "s"
            ),
            "/registry/kwok.x-k8s.io/stages/s"
        );
        assert_eq!(
            store_key(p, &res("events.k8s.io/v1", "events", true), Some("a"), "e"),
            "/registry/events.k8s.io/events/a/e"
        );
    }
}
