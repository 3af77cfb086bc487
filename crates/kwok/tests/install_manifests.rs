//! Install manifests of well-known projects, vendored unmodified under `tests/manifests/`
//! (ingress-nginx, Gatekeeper, prometheus-operator), applied to `kwok apiserver --simulate` with
//! `kubectl apply --server-side` as their users install them: the apply succeeds without errors
//! or warnings, the Deployments become Available on a simulated node, and the usual listings
//! work.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Server;

/// KWOK's usual fake node, carrying the labels these projects select (`kubernetes.io/os`). The
/// `kwok.x-k8s.io/node` NoSchedule taint of KWOK's example is left out: it keeps pods that do
/// not tolerate it away from fake nodes in clusters that also have real ones, and none of these
/// manifests tolerate it.
const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    beta.kubernetes.io/arch: amd64
    beta.kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
"#;

fn manifest(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "manifests", name]
        .iter()
        .collect();
    path.to_str().expect("UTF-8 path").to_string()
}

/// A simulated cluster with one fake node.
fn cluster() -> Server {
    let server = Server::start_with(&["--simulate"]);
    server.ok_stdin(33, &["apply", "--server-side", "-f", "-"], NODE);
    server
}

/// `kubectl apply --server-side -f <manifest>`: every object is applied, nothing is printed on
/// stderr (no error, no warning).
fn apply(server: &Server, minor: u32, name: &str) -> String {
    let path = manifest(name);
    let out = server.kubectl(minor, &["apply", "--server-side", "-f", &path]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "kubectl 1.{minor} apply --server-side -f {name}:\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.lines().all(|l| l.ends_with(" serverside-applied")),
        "{stdout}"
    );
    stdout
}

/// Waits for every Deployment of `namespace` to be Available, as users check it.
fn wait_available(server: &Server, minor: u32, namespace: &str) {
    let out = server.kubectl(
        minor,
        &[
            "wait",
            "--for=condition=Available",
            "deployment",
            "--all",
            "-n",
            namespace,
            "--timeout=60s",
        ],
    );
    assert!(
        out.status.success(),
        "deployments of {namespace} not Available: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.ok(33, &["get", "all,events", "-n", namespace]),
        server.ok(33, &["get", "nodes", "-o", "wide"]),
    );
}

/// Replicas ready of each Deployment of `namespace`, as `name ready/desired` lines.
fn ready_counts(server: &Server, namespace: &str) -> Vec<String> {
    let out = server.ok(
        33,
        &[
            "get",
            "deployments",
            "-n",
            namespace,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.readyReplicas}/{.spec.replicas}{\"\\n\"}{end}",
        ],
    );
    out.lines().map(String::from).collect()
}

/// `kubectl get all -A` and `kubectl get crd` answer with both kubectl versions.
fn listings_work(server: &Server, expect: &[&str]) {
    for minor in [27, 33] {
        let all = server.ok(minor, &["get", "all", "-A"]);
        let crds = server.ok(minor, &["get", "crd"]);
        for text in expect {
            assert!(
                all.contains(text) || crds.contains(text),
                "kubectl 1.{minor}: {text} missing from\n{all}\n{crds}"
            );
        }
    }
}

/// Polls until `done` holds for the output of `kubectl get` with `args`.
fn wait_until(server: &Server, args: &[&str], what: &str, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = server.ok(33, args);
        if done(&out) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ingress_nginx_controller_installs_and_becomes_available() {
    let server = cluster();
    let applied = apply(&server, 33, "ingress-nginx-deploy.yaml");
    assert!(
        applied.contains("validatingwebhookconfiguration.admissionregistration.k8s.io/ingress-nginx-admission serverside-applied"),
        "{applied}"
    );
    wait_available(&server, 33, "ingress-nginx");
    assert_eq!(
        ready_counts(&server, "ingress-nginx"),
        ["ingress-nginx-controller 1/1"]
    );
    // The admission Jobs run to completion on the simulated node and are then removed
    // (`ttlSecondsAfterFinished: 0`).
    wait_until(
        &server,
        &["get", "jobs", "-n", "ingress-nginx", "-o", "name"],
        "admission jobs still there",
        |out| out.trim().is_empty(),
    );
    wait_until(
        &server,
        &["get", "events", "-n", "ingress-nginx"],
        "admission jobs did not complete",
        |events| events.matches("Job completed").count() == 2,
    );
    // Applying again with the older kubectl changes owners of nothing and conflicts with nothing.
    apply(&server, 27, "ingress-nginx-deploy.yaml");
    wait_available(&server, 27, "ingress-nginx");
    listings_work(
        &server,
        &[
            "deployment.apps/ingress-nginx-controller",
            "service/ingress-nginx-controller",
            "LoadBalancer",
        ],
    );
    let class = server.ok(27, &["get", "ingressclass", "nginx"]);
    assert!(class.contains("k8s.io/ingress-nginx"), "{class}");
}

#[test]
fn gatekeeper_installs_with_its_crds_and_webhooks() {
    let server = cluster();
    let applied = apply(&server, 27, "gatekeeper.yaml");
    assert_eq!(
        applied
            .lines()
            .filter(|l| l.starts_with("customresourcedefinition"))
            .count(),
        17,
        "{applied}"
    );
    wait_available(&server, 27, "gatekeeper-system");
    let mut ready = ready_counts(&server, "gatekeeper-system");
    ready.sort();
    assert_eq!(
        ready,
        ["gatekeeper-audit 1/1", "gatekeeper-controller-manager 3/3"]
    );
    server.ok(
        33,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "-l",
            "gatekeeper.sh/system=yes",
            "--timeout=30s",
        ],
    );
    // The namespace carries kube-apiserver's `kubernetes.io/metadata.name` label, which keeps
    // it out of the `check-ignore-label` webhook (failure policy Fail, and nothing answers it):
    // applying it again works. (The rest is not applied again: with nothing answering Gatekeeper's
    // other webhooks, each write of a cluster-scoped object would wait out their timeouts.)
    let labels = server.ok(
        33,
        &[
            "get",
            "namespace",
            "gatekeeper-system",
            "-o",
            "jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name}",
        ],
    );
    assert_eq!(labels, "gatekeeper-system");
    let path = manifest("gatekeeper.yaml");
    let again = server.ok(
        33,
        &[
            "apply",
            "--server-side",
            "-f",
            &path,
            "-l",
            "admission.gatekeeper.sh/ignore",
        ],
    );
    assert_eq!(
        again.trim(),
        "namespace/gatekeeper-system serverside-applied"
    );
    wait_until(
        &server,
        &[
            "get",
            "resourcequota",
            "gatekeeper-critical-pods",
            "-n",
            "gatekeeper-system",
            "-o",
            "jsonpath={.status.used.pods}",
        ],
        "quota does not count the pods",
        |out| out == "4",
    );
    listings_work(
        &server,
        &[
            "deployment.apps/gatekeeper-controller-manager",
            "constrainttemplates.templates.gatekeeper.sh",
            "assign.mutations.gatekeeper.sh",
        ],
    );
    let hooks = server.ok(
        33,
        &[
            "get",
            "validatingwebhookconfigurations,mutatingwebhookconfigurations",
        ],
    );
    assert!(
        hooks.contains("gatekeeper-validating-webhook-configuration")
            && hooks.contains("gatekeeper-mutating-webhook-configuration"),
        "{hooks}"
    );
}

#[test]
fn prometheus_operator_bundle_installs_its_large_crds() {
    let server = cluster();
    let started = Instant::now();
    let applied = apply(&server, 33, "prometheus-operator-bundle.yaml");
    assert_eq!(
        applied
            .lines()
            .filter(|l| l.starts_with("customresourcedefinition"))
            .count(),
        10,
        "{applied}"
    );
    wait_established(&server);
    wait_available(&server, 33, "default");
    assert_eq!(
        ready_counts(&server, "default"),
        ["prometheus-operator 1/1"]
    );
    // A custom resource of the new kinds, as the operator's example has it.
    apply(&server, 33, "prometheus-operator-service-monitor.yaml");
    // The older kubectl applies the same CRDs again without conflicts.
    apply(&server, 27, "prometheus-operator-bundle.yaml");
    listings_work(
        &server,
        &[
            "deployment.apps/prometheus-operator",
            "service/prometheus-operator",
            "prometheuses.monitoring.coreos.com",
            "alertmanagerconfigs.monitoring.coreos.com",
        ],
    );
    let monitors = server.ok(27, &["get", "servicemonitors", "-A"]);
    assert!(monitors.contains("prometheus-operator"), "{monitors}");
    // A client-side apply needs the whole object in an annotation, which is refused as
    // kube-apiserver refuses it: that is why the bundle is applied server-side.
    let path = manifest("prometheus-operator-bundle.yaml");
    let refused = server.fails(33, &["apply", "-f", &path]);
    assert!(
        refused.contains(
            "\"prometheuses.monitoring.coreos.com\" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes"
        ),
        "{refused}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}

/// Waits until every CRD is Established.
fn wait_established(server: &Server) {
    server.ok(
        33,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=30s",
        ],
    );
}

/// `kubectl explain` reads a CRD's schema from the OpenAPI documents.
#[test]
fn explain_reads_the_schemas_of_installed_crds() {
    let server = cluster();
    apply(&server, 33, "prometheus-operator-bundle.yaml");
    wait_established(&server);
    for minor in [27, 33] {
        let out = server.ok(minor, &["explain", "prometheus.spec.alerting"]);
        assert!(out.contains("alertmanagers"), "{out}");
        let out = server.ok(minor, &["explain", "servicemonitors.spec.endpoints"]);
        assert!(out.contains("honorLabels"), "{out}");
    }
}
