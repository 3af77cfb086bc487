//! `kwok bench-rbac`: what authentication and RBAC cost a request.
//!
//! One in-memory API server with a large policy: every namespace has a Role and a RoleBinding
//! for its own service account, and as many extra ClusterRoles and ClusterRoleBindings name
//! other users. The benchmark times single RBAC decisions in-process (allowed through a
//! RoleBinding, and denied after looking at every grant of the user), then the same small
//! list request over HTTPS as the admin (a `system:masters` certificate, which RBAC does not
//! consult) and as a service account with a bound token (JWT check, cached, then RBAC).

use std::time::{Duration, Instant};

use anyhow::Context;
use apiserver::authn::UserInfo;
use apiserver::rbac::Attributes;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::bench::https_cluster;

#[derive(clap::Args)]
pub struct BenchRbacArgs {
    /// Namespaces, each with a Role, a RoleBinding and a ServiceAccount; as many extra
    /// ClusterRoles and ClusterRoleBindings for other users.
    #[arg(long, default_value_t = 1000)]
    namespaces: usize,
    /// Requests per client kind over HTTPS.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

async fn create(client: &kube::Client, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?)?;
    client
        .request_text(req)
        .await
        .with_context(|| format!("POST {path}"))?;
    Ok(())
}

/// Namespaces with their role, binding and account, plus cluster-wide roles for other users.
async fn build_policy(client: &kube::Client, namespaces: usize) -> anyhow::Result<()> {
    let rbac = "/apis/rbac.authorization.k8s.io/v1";
    for i in 0..namespaces {
        let ns = format!("team-{i}");
        create(
            client,
            "/api/v1/namespaces",
            json!({"metadata": {"name": ns}}),
        )
        .await?;
        create(
            client,
            &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
            json!({"metadata": {"name": "worker"}}),
        )
        .await?;
        create(client, &format!("{rbac}/namespaces/{ns}/roles"), json!({
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list", "watch"]}],
        })).await?;
        create(client, &format!("{rbac}/namespaces/{ns}/rolebindings"), json!({
            "metadata": {"name": "worker-reads"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": ns}],
        })).await?;
        create(client, &format!("{rbac}/clusterroles"), json!({
            "metadata": {"name": format!("extra-{i}")},
            "rules": [{"apiGroups": ["example.com"], "resources": [format!("widgets{i}")], "verbs": ["*"]}],
        })).await?;
        create(client, &format!("{rbac}/clusterrolebindings"), json!({
            "metadata": {"name": format!("extra-{i}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("extra-{i}")},
            "subjects": [{"kind": "User", "name": format!("user-{i}")}, {"kind": "Group", "name": "system:serviceaccounts"}],
        })).await?;
    }
    Ok(())
}

/// Nanoseconds per decision over `rounds` calls; `fresh` asks about a different object each
/// time, so no decision is remembered from an earlier one.
fn decision_cost(server: &apiserver::ApiServer, allowed: bool, fresh: bool, rounds: usize) -> f64 {
    let user = UserInfo {
        name: "system:serviceaccount:team-0:worker".into(),
        groups: vec![
            "system:serviceaccounts".into(),
            "system:serviceaccounts:team-0".into(),
            "system:authenticated".into(),
        ],
        ..UserInfo::default()
    };
    let mut a = Attributes {
        user,
        verb: if allowed { "list" } else { "delete" }.into(),
        namespace: "team-0".into(),
        api_version: "v1".into(),
        resource: "configmaps".into(),
        resource_request: true,
        ..Attributes::default()
    };
    let names: Vec<String> = (0..rounds)
        .map(|i| {
            if fresh {
                format!("cm-{i}")
            } else {
                String::new()
            }
        })
        .collect();
    let started = Instant::now();
    for name in names {
        a.name = name;
        let decision = server.authorizer.authorize(std::hint::black_box(&a));
        assert_eq!(decision.allowed, allowed);
    }
    started.elapsed().as_nanos() as f64 / rounds as f64
}

/// p50, p99 and requests per second of `requests` lists through `client`.
async fn time_lists(
    client: &kube::Client,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<(Duration, Duration, f64)> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "team-0");
    api.list(&ListParams::default())
        .await
        .context("the client may list")?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let api = api.clone();
        let share = requests / concurrency + usize::from(worker < requests % concurrency);
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                api.list(&ListParams::default()).await?;
                samples.push(t.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await??);
    }
    let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    Ok((at(0.50), at(0.99), rate))
}

/// A kube-rs client that authenticates with a bearer token only.
async fn token_client(
    https: &crate::bench::HttpsCluster,
    token: &str,
) -> anyhow::Result<kube::Client> {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: b\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: b\n  user:\n    token: {token}\ncontexts:\n- name: b\n  context: {{cluster: b, user: b}}\ncurrent-context: b\n",
        https.port,
        https.pki.ca_cert().display(),
    );
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&kubeconfig)?,
        &Default::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

pub async fn run(args: BenchRbacArgs) -> anyhow::Result<()> {
    let store = store::LocalStore::in_memory();
    let server = apiserver::ApiServer::new(store, "127.0.0.1:0".into()).await?;
    let https = https_cluster(server.clone(), tempfile::tempdir()?).await?;
    let admin = https.client.clone();
    let started = Instant::now();
    build_policy(&admin, args.namespaces).await?;
    println!(
        "rbac: {} namespaces (Role, RoleBinding, ServiceAccount each) and {} extra ClusterRoles/Bindings in {:.1} s",
        args.namespaces,
        args.namespaces,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rounds = 200_000;
    println!(
        "decision in-process, first time: allowed {:.0} ns, denied {:.0} ns; repeated: allowed {:.0} ns, denied {:.0} ns (a service account whose groups have {} cluster-wide grants)",
        decision_cost(&server, true, true, rounds),
        decision_cost(&server, false, true, rounds),
        decision_cost(&server, true, false, rounds),
        decision_cost(&server, false, false, rounds),
        args.namespaces
    );

    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(admin.clone(), "team-0");
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": []}}))?;
    let token = accounts
        .create_token_request("worker", &PostParams::default(), &request)
        .await?
        .status
        .context("a token")?
        .token;
    let worker = token_client(&https, &token).await?;
    for (who, client) in [
        ("admin (system:masters certificate)", &admin),
        ("service account (bound token)", &worker),
    ] {
        let (p50, p99, rate) = time_lists(client, args.requests, args.concurrency).await?;
        println!(
            "list configmaps as {who}: p50 {:.2} ms, p99 {:.2} ms, {rate:.0} requests/s ({} requests, {} at once)",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            args.requests,
            args.concurrency
        );
    }
    Ok(())
}
