//! `kwok bench-admission`: what dynamic admission adds to a create.
//!
//! One in-memory API server. ConfigMaps are created one at a time (so each figure is a latency,
//! not a throughput): plain; through one mutating and one validating webhook registered by URL
//! (a TLS server in this process that answers at once, the mutating one with a one-operation
//! JSON patch); and with a ValidatingAdmissionPolicy of three CEL rules bound with `Deny`.
//! Webhook rows are timed over HTTPS as a client sees them, policy rows in-process, where a
//! few microseconds are not lost in the noise of a round trip.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;
use apiserver::ApiServer;
use apiserver::rest::WriteOptions;
use axum::Json;
use base64::Engine;
use serde_json::{Value, json};

use crate::bench::https_cluster;

#[derive(clap::Args)]
pub struct BenchAdmissionArgs {
    /// Creates per row.
    #[arg(long, default_value_t = 2000)]
    creates: usize,
}

/// Answers every review at once; `/mutate` adds one label.
async fn answer(path: axum::extract::Path<String>, Json(review): Json<Value>) -> Json<Value> {
    let uid = review["request"]["uid"].clone();
    let mut response = json!({"uid": uid, "allowed": true});
    if path.0 == "mutate" {
        let patch = br#"[{"op":"add","path":"/metadata/annotations","value":{"seen":"yes"}}]"#;
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    )
}

/// A webhook server on a loopback port; returns its port and CA bundle (base64).
async fn webhook_server() -> anyhow::Result<(u16, String)> {
    let bundle = pki::generate(&[])?;
    let tls = apiserver::tls_config(
        bundle.serving.cert.as_bytes(),
        bundle.serving.key.as_bytes(),
        bundle.ca.cert.as_bytes(),
    )?;
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let port = listener.local_addr()?.port();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = axum::Router::new().route("/{path}", axum::routing::post(answer));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    let ca = base64::engine::general_purpose::STANDARD.encode(&bundle.ca.cert);
    Ok((port, ca))
}

fn webhook_configuration(kind: &str, port: u16, ca: &str, path: &str) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": path},
        "webhooks": [{
            "name": format!("{path}.bench.io"),
            "clientConfig": {"url": format!("https://127.0.0.1:{port}/{path}"), "caBundle": ca},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }],
    })
}

fn policy() -> [Value; 2] {
    [
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "three-rules"},
            "spec": {
                "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]},
                "validations": [
                    {"expression": "object.metadata.name.size() < 64"},
                    {"expression": "!has(object.data) || object.data.size() < 100"},
                    {"expression": "!has(object.metadata.labels) || !('forbidden' in object.metadata.labels)"},
                ],
            },
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "three-rules"},
            "spec": {"policyName": "three-rules", "validationActions": ["Deny"]},
        }),
    ]
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "bench"}}, "data": {"key": "value"}})
}

async fn create_in_process(server: &ApiServer, body: Value) -> anyhow::Result<()> {
    let api_version = body["apiVersion"].as_str().unwrap_or("");
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    let kind = body["kind"].as_str().unwrap_or("");
    let r = apiserver::resources::find_kind(group, kind).context("a built-in kind")?;
    let namespace = r.namespaced.then_some("default");
    server
        .registry
        .create(r, namespace, body, &WriteOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(())
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    (at(0.5).as_secs_f64() * 1e6, at(0.99).as_secs_f64() * 1e6)
}

/// Per-create latencies over HTTPS, one at a time.
async fn https_row(client: &kube::Client, prefix: &str, n: usize) -> anyhow::Result<(f64, f64)> {
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "default");
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let cm: k8s_openapi::api::core::v1::ConfigMap =
            serde_json::from_value(configmap(&format!("{prefix}-{i}")))?;
        let started = Instant::now();
        api.create(&Default::default(), &cm).await?;
        samples.push(started.elapsed());
    }
    Ok(percentiles(samples))
}

/// Per-create latencies in-process, one at a time.
async fn in_process_row(server: &ApiServer, prefix: &str, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let body = configmap(&format!("{prefix}-{i}"));
        let started = Instant::now();
        create_in_process(server, body).await?;
        samples.push(started.elapsed());
    }
    Ok(percentiles(samples))
}

fn print_row(what: &str, (p50, p99): (f64, f64), plain: (f64, f64)) {
    println!(
        "{what}: p50 {p50:.0} µs, p99 {p99:.0} µs (adds {:.0} µs at the median)",
        p50 - plain.0
    );
}

pub async fn run(args: BenchAdmissionArgs) -> anyhow::Result<()> {
    let n = args.creates;
    let server = ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into()).await?;
    let https = https_cluster(server.clone(), tempfile::tempdir()?).await?;
    let warm = n / 10 + 1;
    in_process_row(&server, "warm", warm).await?;
    https_row(&https.client, "warm-https", warm).await?;

    let plain_local = in_process_row(&server, "plain", n).await?;
    let plain_https = https_row(&https.client, "plain-https", n).await?;
    println!(
        "create, in-process: p50 {:.0} µs, p99 {:.0} µs ({n} ConfigMaps one at a time)",
        plain_local.0, plain_local.1
    );
    println!(
        "create, HTTPS: p50 {:.0} µs, p99 {:.0} µs",
        plain_https.0, plain_https.1
    );

    for object in policy() {
        create_in_process(&server, object).await?;
    }
    print_row(
        "create with a ValidatingAdmissionPolicy of 3 CEL rules, in-process",
        in_process_row(&server, "policy", n).await?,
        plain_local,
    );
    print_row(
        "create with a ValidatingAdmissionPolicy of 3 CEL rules, HTTPS",
        https_row(&https.client, "policy-https", n).await?,
        plain_https,
    );
    for kind in [
        "ValidatingAdmissionPolicyBinding",
        "ValidatingAdmissionPolicy",
    ] {
        let r = apiserver::resources::find_kind("admissionregistration.k8s.io", kind)
            .context("built in")?;
        server
            .registry
            .delete(r, None, "three-rules", &Default::default())
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }

    let (port, ca) = webhook_server().await?;
    create_in_process(
        &server,
        webhook_configuration("MutatingWebhookConfiguration", port, &ca, "mutate"),
    )
    .await?;
    create_in_process(
        &server,
        webhook_configuration("ValidatingWebhookConfiguration", port, &ca, "validate"),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    in_process_row(&server, "warm-hooks", warm).await?;
    print_row(
        "create through 1 mutating + 1 validating URL webhook, in-process",
        in_process_row(&server, "hooks", n).await?,
        plain_local,
    );
    print_row(
        "create through 1 mutating + 1 validating URL webhook, HTTPS",
        https_row(&https.client, "hooks-https", n).await?,
        plain_https,
    );
    let sample = server
        .registry
        .get(
            apiserver::resources::find("", "v1", "configmaps").context("built in")?,
            Some("default"),
            "hooks-0",
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    anyhow::ensure!(
        String::from_utf8_lossy(&sample).contains("\"seen\":\"yes\""),
        "the mutating webhook's patch was not applied"
    );
    Ok(())
}
