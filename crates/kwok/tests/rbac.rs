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

/// The user `kubectl auth whoami` reports through `kubeconfig` (with `extra` args).
fn whoami(kubeconfig: &PathBuf, extra: &[&str]) -> Value {
    let mut args = vec!["auth", "whoami", "-o", "json"];
    args.extend_from_slice(extra);
    let out = kubectl_as(33, kubeconfig, &args);
    let review: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("whoami failed: {}", text(&out.stderr)));
    review["status"]["userInfo"].clone()
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
- {apiGroups: [rbac.authorization.k8s.io], resources: [roles, clusterroles, rolebindings], verbs: [create, get]}
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
    // Every authenticated user may ask who they are (system:basic-user).
    assert_eq!(whoami(&as_builder, &["--as", "bob"])["username"], "bob");

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

    // An aggregated role would take in whatever its selector matches: admins only.
    let aggregated = write(
        server.dir.path(),
        "aggregated.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gather-everything}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {kubernetes.io/bootstrapping: rbac-defaults}}]
rules: []
",
    );
    let out = kubectl_as(
        33,
        &as_builder,
        &["create", "-f", aggregated.to_str().unwrap()],
    );
    assert!(
        text(&out.stderr).contains("must have cluster-admin privileges to use the aggregationRule"),
        "{}",
        text(&out.stderr)
    );
    // A binding to a role that does not exist grants nothing and is refused as NotFound.
    let dangling = kubectl_as(
        33,
        &as_builder,
        &[
            "create",
            "rolebinding",
            "dangling",
            "--role=not-there",
            "--user=eve",
        ],
    );
    assert!(
        text(&dangling.stderr).contains("not found"),
        "{}",
        text(&dangling.stderr)
    );
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
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
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

#[test]
fn token_secrets_are_filled_on_request_and_authenticate() {
    let server = Server::start();
    server.ok(33, &["create", "serviceaccount", "builder"]);
    let secret = write(
        server.dir.path(),
        "secret.yaml",
        "apiVersion: v1
kind: Secret
metadata:
  name: builder-token
  annotations: {kubernetes.io/service-account.name: builder}
type: kubernetes.io/service-account-token
",
    );
    server.ok(33, &["apply", "-f", secret.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let filled = loop {
        let s = server.get_json(33, &["secret", "builder-token"]);
        if s["data"]["token"].is_string() {
            break s;
        }
        assert!(Instant::now() < deadline, "never filled: {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    use base64::Engine as _;
    let decode = |v: &Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decode(&filled["data"]["namespace"]), "default");
    assert!(decode(&filled["data"]["ca.crt"]).contains("BEGIN CERTIFICATE"));
    let account = server.get_json(33, &["serviceaccount", "builder"]);
    assert_eq!(
        filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        account["metadata"]["uid"]
    );
    let token = decode(&filled["data"]["token"]);
    let as_builder = token_kubeconfig(&server, "legacy.kubeconfig", Some(&token));
    let out = kubectl_as(
        33,
        &as_builder,
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(text(&out.stdout), SA_USER, "{}", text(&out.stderr));

    // No Secret appears for an account by itself (1.24+).
    let secrets = server.get_json(33, &["secrets"]);
    assert_eq!(secrets["items"].as_array().unwrap().len(), 1);
}

/// A key and a PEM certificate request for `user` in `group`.
fn certificate_request(user: &str, group: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, user);
    dn.push(rcgen::DnType::OrganizationName, group);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (key.serialize_pem(), csr)
}

fn csr_manifest(name: &str, csr: &str) -> String {
    use base64::Engine as _;
    format!(
        "apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {{name: {name}}}
spec:
  request: {}
  signerName: kubernetes.io/kube-apiserver-client
  expirationSeconds: 86400
  usages: [client auth]
",
        base64::engine::general_purpose::STANDARD.encode(csr)
    )
}

#[test]
fn certificate_signing_requests_onboard_a_user() {
    use base64::Engine as _;
    let server = Server::start();
    let (key, csr) = certificate_request("carol", "devs");
    let manifest = write(server.dir.path(), "csr.yaml", &csr_manifest("carol", &csr));
    server.ok(27, &["apply", "-f", manifest.to_str().unwrap()]);
    let table = server.ok(33, &["get", "csr", "carol"]);
    assert!(
        table.contains("Pending") && table.contains("kwok-admin"),
        "{table}"
    );
    let out = server.ok(33, &["certificate", "approve", "carol"]);
    assert!(out.contains("approved"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let issued = loop {
        let csr = server.get_json(33, &["csr", "carol"]);
        if let Some(cert) = csr["status"]["certificate"].as_str() {
            assert_eq!(csr["status"]["conditions"][0]["type"], "Approved");
            break cert.to_string();
        }
        assert!(Instant::now() < deadline, "never issued: {csr}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        server
            .ok(33, &["get", "csr", "carol"])
            .contains("Approved,Issued")
    );
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let kubeconfig = write(
        server.dir.path(),
        "carol.kubeconfig",
        &format!(
            "apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{}', certificate-authority: '{}'}}}}]
users: [{{name: u, user: {{client-certificate-data: {issued}, client-key-data: {}}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
",
            server.port,
            server.pki().join("ca.crt").display(),
            b64(&key)
        ),
    );
    let carol = whoami(&kubeconfig, &[]);
    assert_eq!(carol["username"], "carol");
    assert_eq!(carol["groups"][0], "devs");

    // Denied requests get no certificate; users without `approve` cannot decide.
    let (_, other) = certificate_request("dave", "devs");
    let manifest = write(
        server.dir.path(),
        "dave.yaml",
        &csr_manifest("dave", &other),
    );
    server.ok(33, &["apply", "-f", manifest.to_str().unwrap()]);
    server.ok(33, &["create", "serviceaccount", "builder"]);
    let token = server.ok(33, &["create", "token", "builder"]);
    let as_builder = token_kubeconfig(&server, "b.kubeconfig", Some(token.trim()));
    let out = kubectl_as(33, &as_builder, &["certificate", "approve", "dave"]);
    assert!(!out.status.success());
    server.ok(33, &["certificate", "deny", "dave"]);
    std::thread::sleep(Duration::from_millis(300));
    let dave = server.get_json(33, &["csr", "dave"]);
    assert_eq!(dave["status"]["conditions"][0]["type"], "Denied");
    assert!(dave["status"]["certificate"].is_null());

    // Approval happens only through `approval`: a status write cannot add it.
    let (_, third) = certificate_request("erin", "devs");
    let manifest = write(
        server.dir.path(),
        "erin.yaml",
        &csr_manifest("erin", &third),
    );
    server.ok(33, &["apply", "-f", manifest.to_str().unwrap()]);
    server.ok(
        33,
        &[
            "patch",
            "csr",
            "erin",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"Approved","status":"True","reason":"Forged"}]}}"#,
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let erin = server.get_json(33, &["csr", "erin"]);
    assert!(erin["status"]["conditions"].is_null(), "{erin}");
    assert!(erin["status"]["certificate"].is_null());

    let bad = write(
        server.dir.path(),
        "bad.yaml",
        &csr_manifest("bad", "not a request")
            .replace("expirationSeconds: 86400", "expirationSeconds: 60"),
    );
    let err = server.fails(33, &["apply", "-f", bad.to_str().unwrap()]);
    assert!(
        err.contains("PEM block type must be CERTIFICATE REQUEST"),
        "{err}"
    );
    assert!(err.contains("spec.expirationSeconds"), "{err}");
}
