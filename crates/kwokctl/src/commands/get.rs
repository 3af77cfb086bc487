//! `kwokctl get clusters | components | kubeconfig`.

use std::io::IsTerminal;

use anyhow::Context as _;
use base64::Engine as _;
use serde_json::Value;

use crate::cli::{GetKubeconfigArgs, OutputFormat};
use crate::context::Context;
use crate::kubeconfig;
use crate::runtime::{self, Cluster, ComponentStatus, RuntimeKind};

pub fn clusters(ctx: &Context, output: OutputFormat) -> anyhow::Result<()> {
    let names = super::list_clusters(&ctx.workdir)?;
    if names.is_empty() {
        if std::io::stderr().is_terminal() {
            eprintln!("No clusters found");
        }
        return Ok(());
    }
    match output {
        OutputFormat::Name => {
            for name in names {
                println!("{name}");
            }
        }
        OutputFormat::Wide => {
            let mut rows = vec![vec!["NAME".into(), "READY".into(), "STATUS".into()]];
            for name in names {
                let (ready, status) = cluster_status(ctx, &name);
                rows.push(vec![name, ready, status]);
            }
            super::print_table(&rows);
        }
    }
    Ok(())
}

/// READY (`<ready>/<components>`) and STATUS of one cluster, as upstream reports them.
fn cluster_status(ctx: &Context, name: &str) -> (String, String) {
    let cluster = match Cluster::load(name, &ctx.workdir.cluster(name)) {
        Ok(cluster) => cluster,
        Err(err) => return ("0/0".into(), format!("Failed:{err}")),
    };
    if RuntimeKind::parse(cluster.runtime_name()).is_none() {
        let rt = runtime::for_cluster(ctx, &cluster);
        let err = rt.available().err().unwrap_or_default();
        return (
            format!("0/{}", cluster.config.components.len()),
            format!("Failed:{err}"),
        );
    }
    let rt = runtime::for_cluster(ctx, &cluster);
    let components = rt.components(&cluster);
    let total = components.len();
    let ready = components
        .iter()
        .filter(|(_, s)| *s == ComponentStatus::Ready)
        .count();
    let status = if let Some(err) = components.iter().find_map(|(_, s)| match s {
        ComponentStatus::Error(e) => Some(e.clone()),
        _ => None,
    }) {
        format!("Error:{err}")
    } else if total == 0 {
        "Unknown".into()
    } else if ready == total {
        "Ready".into()
    } else if ready == 0 {
        "Stopped".into()
    } else {
        "NotReady".into()
    };
    (format!("{ready}/{total}"), status)
}

pub fn components(ctx: &Context, output: OutputFormat) -> anyhow::Result<()> {
    let cluster = super::load_existing(ctx)?;
    let rt = runtime::for_cluster(ctx, &cluster);
    match output {
        OutputFormat::Name => {
            for component in &cluster.config.components {
                println!("{}", component.name);
            }
        }
        OutputFormat::Wide => {
            // Host processes also show their pid (`-` when stopped).
            let processes = matches!(
                RuntimeKind::parse(cluster.runtime_name()),
                Some(RuntimeKind::Embedded | RuntimeKind::Binary)
            );
            let mut header = vec!["NAME".to_string(), "STATUS".to_string()];
            if processes {
                header.push("PID".into());
            }
            let mut rows = vec![header];
            for (name, status) in rt.components(&cluster) {
                let pid = runtime::running_pid(&cluster.paths, &name)
                    .map_or_else(|| "-".to_string(), |pid| pid.to_string());
                let mut row = vec![name, status.to_string()];
                if processes {
                    row.push(pid);
                }
                rows.push(row);
            }
            super::print_table(&rows);
        }
    }
    Ok(())
}

pub fn kubeconfig(ctx: &Context, args: &GetKubeconfigArgs) -> anyhow::Result<()> {
    let cluster = super::load_existing(ctx)?;
    let path = cluster.paths.kubeconfig();
    let doc = kubeconfig::load(&path)?;
    let mut out = flatten(&doc, &args.host, args.insecure_skip_tls_verify)?;
    if args.user != pki::ADMIN_USER || args.group != [pki::ADMIN_GROUP] {
        let paths = pki::PkiPaths::new(cluster.paths.pki());
        let ca = pki::CertPem {
            cert: pki::read(&paths.ca_cert())?,
            key: pki::read(&paths.ca_key())?,
        };
        let signed = pki::client_certificate(&ca, &args.user, &args.group)
            .context("sign a client certificate")?;
        replace_client_certificate(&mut out, &signed);
    }
    print!("{}", kubeconfig::render(&out)?);
    Ok(())
}

/// Puts a freshly signed certificate and key in the (only) user of a flattened kubeconfig.
fn replace_client_certificate(doc: &mut Value, signed: &pki::CertPem) {
    let b64 = |s: &str| Value::String(base64::engine::general_purpose::STANDARD.encode(s));
    if let Some(body) = doc["users"][0]["user"].as_object_mut() {
        body.retain(|k, _| !k.starts_with("client-") && k != "token");
        body.insert("client-certificate-data".into(), b64(&signed.cert));
        body.insert("client-key-data".into(), b64(&signed.key));
    }
}

fn find_named<'a>(doc: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    doc.get(list)?
        .as_array()?
        .iter()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
}

fn embed(body: &mut serde_json::Map<String, Value>, key: &str) -> anyhow::Result<()> {
    if let Some(Value::String(file)) = body.remove(key) {
        let bytes = std::fs::read(&file).with_context(|| format!("read {file}"))?;
        body.insert(
            format!("{key}-data"),
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        );
    }
    Ok(())
}

/// Minifies to the current context and embeds the certificate files.
fn flatten(doc: &Value, host: &str, insecure: bool) -> anyhow::Result<Value> {
    let current = doc
        .get("current-context")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let context =
        find_named(doc, "contexts", current).context("current cluster is not configured")?;
    let cluster_name = context["context"]["cluster"].as_str().unwrap_or_default();
    let user_name = context["context"]["user"].as_str().unwrap_or_default();
    let mut cluster = find_named(doc, "clusters", cluster_name)
        .context("current cluster is not configured")?
        .clone();
    let body = cluster["cluster"]
        .as_object_mut()
        .context("current cluster is not configured")?;
    if insecure {
        body.remove("certificate-authority");
        body.remove("certificate-authority-data");
        body.insert("insecure-skip-tls-verify".into(), Value::Bool(true));
    } else {
        embed(body, "certificate-authority")?;
    }
    if !host.is_empty()
        && let Some(Value::String(server)) = body.get_mut("server")
    {
        *server = replace_host(server, host);
    }
    let mut users = Vec::new();
    if let Some(user) = find_named(doc, "users", user_name) {
        let mut user = user.clone();
        if let Some(body) = user["user"].as_object_mut() {
            embed(body, "client-certificate")?;
            embed(body, "client-key")?;
        }
        users.push(user);
    }
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "contexts": [context],
        "current-context": current,
        "users": users,
        "preferences": {},
    }))
}

/// Replaces the host (and the port, when `host` carries one) of `https://h:p`.
fn replace_host(server: &str, host: &str) -> String {
    let (scheme, rest) = server.split_once("://").unwrap_or(("https", server));
    let port = rest.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
    if host.contains(':') || port.is_empty() {
        format!("{scheme}://{host}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_replacement() {
        assert_eq!(
            replace_host("https://127.0.0.1:6443", "10.0.0.1"),
            "https://10.0.0.1:6443"
        );
        assert_eq!(
            replace_host("https://127.0.0.1:6443", "example:1"),
            "https://example:1"
        );
    }
}
