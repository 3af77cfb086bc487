//! Identities and RBAC against the real `kwok apiserver`: service-account tokens from
//! `kubectl create token` used by kubectl 1.27 and 1.33 and by kube-rs, Forbidden answers with
//! kube-apiserver's wording, bindings taking effect, impersonation, escalation checks,
//! TokenReview, anonymous requests, and the bootstrap roles with aggregation.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Server, write};
use serde_json::Value;

const SA_USER: &str = "system:serviceaccount:default:builder";

/// A kubeconfig that authenticates with `token` only.
fn token_kubeconfig(server: &Server, name: &str, token: Option<&str>) -> PathBuf {
    let user = token.map_or("{}".to_string(), |t| format!("{{token: {t}}}"));
    let text = format!(
        "apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}', certificate-authority: '{ca}'}}}}]
users: [{{name: u, user: {user}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
",
        port = server.port,
        ca = server.pki().join("ca.crt").display(),
    );
    write(server.dir.path(), name, &text)
}

fn kubectl_as(minor: u32, kubeconfig: &PathBuf, args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::kubectl_version(minor))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Retries `args` until kubectl succeeds (a new binding reaches the authorizer by watch).
fn eventually_ok(minor: u32, kubeconfig: &PathBuf, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = kubectl_as(minor, kubeconfig, args);
        if out.status.success() {
            return text(&out.stdout);
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {args:?} kept failing: {}",
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn service_account_access(minor: u32) {
    let server = Server::start();
    server.ok(minor, &["create", "serviceaccount", "builder"]);
    let token = server.ok(minor, &["create", "token", "builder"]);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let as_builder = token_kubeconfig(&server, "builder.kubeconfig", Some(token));

    let out = kubectl_as(minor, &as_builder, &["get", "pods"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!(
            "pods is forbidden: User \"{SA_USER}\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        )),
        "{}",
        text(&out.stderr)
    );
    let out = kubectl_as(minor, &as_builder, &["auth", "can-i", "list", "pods"]);
    assert_eq!(text(&out.stdout).trim(), "no");

    server.ok(
        minor,
        &[
            "create",
            "rolebinding",
            "builder-view",
            "--clusterrole",
            "view",
            "--serviceaccount",
            "default:builder",
        ],
    );
    eventually_ok(minor, &as_builder, &["get", "pods"]);
    let out = kubectl_as(minor, &as_builder, &["auth", "can-i", "delete", "pods"]);
    assert_eq!(text(&out.stdout).trim(), "no");
    let out = kubectl_as(minor, &as_builder, &["get", "nodes"]);
    assert!(
        text(&out.stderr)
            .contains("cannot list resource \"nodes\" in API group \"\" at the cluster scope"),
        "{}",
        text(&out.stderr)
    );
    let out = kubectl_as(minor, &as_builder, &["get", "secrets"]);
    assert!(!out.status.success(), "view does not read secrets");

    // The admin asks on someone else's behalf.
    let out = server.kubectl(minor, &["auth", "can-i", "list", "pods", "--as", SA_USER]);
    assert_eq!(text(&out.stdout).trim(), "yes");
    let out = server.kubectl(
        minor,
        &[
            "auth",
            "can-i",
            "list",
            "pods",
            "--as",
            SA_USER,
            "-n",
            "kube-system",
        ],
    );
    assert_eq!(text(&out.stdout).trim(), "no");
}

#[test]
fn service_account_access_kubectl_1_27() {
    service_account_access(27);
}

#[test]
fn service_account_access_kubectl_1_33() {
    service_account_access(33);
}

#[test]
fn impersonation_and_escalation_are_checked() {
    let server = Server::start();
    server.ok(33, &["create", "serviceaccount", "builder"]);
    let token = server.ok(33, &["create", "token", "builder"]);
    let as_builder = token_kubeconfig(&server, "b.kubeconfig", Some(token.trim()));
    let rules = write(
        server.dir.path(),
        "rbac.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-bob}
rules:
- {apiGroups: [''], resources: [users], verbs: [impersonate], resourceNames: [bob]}
- {apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [create, get]}
- {apiGroups: [''], resources: [pods], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: builder-impersonates-bob}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-bob}
subjects: [{kind: ServiceAccount, name: builder, namespace: default}]
",
    );
    server.ok(33, &["apply", "-f", rules.to_str().unwrap()]);
    eventually_ok(33, &as_builder, &["get", "pods"]);

    let out = kubectl_as(33, &as_builder, &["get", "pods", "--as", "carol"]);
    assert!(
        text(&out.stderr).contains(&format!(
            "users \"carol\" is forbidden: User \"{SA_USER}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        )),
        "{}",
        text(&out.stderr)
    );
    let out = kubectl_as(33, &as_builder, &["get", "pods", "--as", "bob"]);
    assert!(
        text(&out.stderr).contains("User \"bob\" cannot list resource \"pods\""),
        "acts as bob: {}",
        text(&out.stderr)
    );
    let whoami = kubectl_as(
        33,
        &as_builder,
        &["auth", "whoami", "--as", "bob", "-o", "json"],
    );
    let review: Value = serde_json::from_slice(&whoami.stdout).unwrap_or(Value::Null);
    // bob may not create selfsubjectreviews? system:basic-user grants it to every authenticated user.
    assert_eq!(
        review["status"]["userInfo"]["username"],
        "bob",
        "{}",
        text(&whoami.stderr)
    );

    // Holding get/list on pods does not allow granting delete.
    let role = write(
        server.dir.path(),
        "role.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deleter, namespace: default}
rules: [{apiGroups: [''], resources: [pods], verbs: [delete]}]
",
    );
    let out = kubectl_as(33, &as_builder, &["create", "-f", role.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        text(&out.stderr)
    );
    let within = write(
        server.dir.path(),
        "reader.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: default}
rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]
",
    );
    let out = kubectl_as(33, &as_builder, &["create", "-f", within.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn token_review_anonymous_and_discovery_documents() {
    let server = Server::start();
    server.ok(33, &["create", "serviceaccount", "builder"]);
    let token = server.ok(33, &["create", "token", "builder", "--audience", "vault"]);
    let review = |token: &str, audience: &str| -> Value {
        let body = format!(
            "{{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"spec\":{{\"token\":\"{token}\",\"audiences\":[\"{audience}\"]}}}}"
        );
        let file = write(server.dir.path(), "review.json", &body);
        let out = server.ok(33, &["create", "-f", file.to_str().unwrap(), "-o", "json"]);
        serde_json::from_str(&out).unwrap()
    };
    let ok = review(token.trim(), "vault");
    assert_eq!(ok["status"]["authenticated"], true, "{ok}");
    assert_eq!(ok["status"]["user"]["username"], SA_USER);
    assert_eq!(ok["status"]["audiences"][0], "vault");
    let wrong_audience = review(token.trim(), "other");
    assert_ne!(wrong_audience["status"]["authenticated"], true);
    let garbage = review("not-a-token", "vault");
    assert_ne!(garbage["status"]["authenticated"], true);
    server.ok(33, &["delete", "serviceaccount", "builder"]);
    let deleted = review(token.trim(), "vault");
    assert_ne!(
        deleted["status"]["authenticated"], true,
        "the account is gone"
    );

    let err = server.fails(33, &["create", "token", "default", "--duration", "1m"]);
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );

    let forged = token_kubeconfig(
        &server,
        "forged.kubeconfig",
        Some("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
    );
    let out = kubectl_as(33, &forged, &["get", "pods"]);
    assert!(
        text(&out.stderr).contains("You must be logged in to the server"),
        "{}",
        text(&out.stderr)
    );

    let jwks: Value =
        serde_json::from_str(&server.ok(33, &["get", "--raw", "/openid/v1/jwks"])).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    let oidc: Value = serde_json::from_str(
        &server.ok(33, &["get", "--raw", "/.well-known/openid-configuration"]),
    )
    .unwrap();
    assert_eq!(
        oidc["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
}

#[test]
fn bootstrap_roles_aggregate_custom_rules() {
    let server = Server::start();
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:kube-scheduler",
    ] {
        server.ok(33, &["get", "clusterrole", name]);
    }
    let binding = server.get_json(33, &["clusterrolebinding", "cluster-admin"]);
    assert_eq!(binding["subjects"][0]["name"], "system:masters");
    let widget_viewer = write(
        server.dir.path(),
        "agg.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widgets-view
  labels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}
rules: [{apiGroups: [example.com], resources: [widgets], verbs: [get, list, watch]}]
",
    );
    server.ok(33, &["apply", "-f", widget_viewer.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = server.get_json(33, &["clusterrole", "view"]);
        let rules = view["rules"].as_array().cloned().unwrap_or_default();
        if rules.iter().any(|r| r["resources"][0] == "widgets") {
            assert!(rules.iter().any(|r| {
                r["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x == "pods")
            }));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "view never took in widgets: {view}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn kube_rs_with_a_service_account_token() {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams, PostParams};

    let server = Server::start();
    server.ok(33, &["create", "serviceaccount", "builder"]);
    let token = server.ok(33, &["create", "token", "builder"]);
    let path = token_kubeconfig(&server, "kube-rs.kubeconfig", Some(token.trim()));
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    match pods.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403);
            assert_eq!(status.reason, "Forbidden");
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client);

    // Without credentials: 401, except the public health and version paths.
    let anonymous = token_kubeconfig(&server, "anon.kubeconfig", None);
    let kubeconfig = kube::config::Kubeconfig::read_from(anonymous).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let nobody = kube::Client::try_from(config).unwrap();
    match Api::<Pod>::namespaced(nobody.clone(), "default")
        .list(&ListParams::default())
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let health = nobody
        .request_text(http::Request::get("/healthz").body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(health, "ok");
    nobody
        .apiserver_version()
        .await
        .expect("/version is public");

    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some("default".into()),
                verb: Some("create".into()),
                resource: Some("selfsubjectaccessreviews".into()),
                group: Some("authorization.k8s.io".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert!(answer.status.unwrap().allowed, "basic-user may ask");
}
