//! StatefulSets, DaemonSets, CronJobs, Endpoints, node lifecycle and ResourceQuotas through the
//! real `kwok apiserver`, driven by kubectl.

mod common;

use std::time::{Duration, Instant};

use common::Server;

fn apply(server: &Server, minor: u32, text: &str) {
    let out = server.kubectl_stdin(minor, &["apply", "-f", "-"], Some(text));
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `kubectl get <args>` until `done` accepts the output, or panics after `timeout`.
fn wait_for(
    server: &Server,
    args: &[&str],
    timeout: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let out = server.kubectl(33, args);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last output {text:?}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn nodes(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!("---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n  labels:\n    type: kwok\n")
        })
        .collect()
}

fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

const STATEFULSET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
"#;

#[test]
fn statefulset_creates_pods_in_order_rolls_out_and_scales_down() {
    let server = Server::start_with(&["--simulate"]);
    apply(&server, 33, &nodes(&["node-0", "node-1"]));
    apply(&server, 33, STATEFULSET);
    let out = server.ok(
        33,
        &["rollout", "status", "statefulset/web", "--timeout=90s"],
    );
    assert!(out.contains("roll"), "{out}");
    let pods = server.ok(
        33,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.creationTimestamp} {.metadata.labels.apps\\.kubernetes\\.io/pod-index} {.metadata.labels.statefulset\\.kubernetes\\.io/pod-name} {.status.phase}{\"\\n\"}{end}",
        ],
    );
    let rows: Vec<Vec<&str>> = pods.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 3, "{pods}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], format!("web-{i}"), "{pods}");
        assert_eq!(row[2], i.to_string(), "{pods}");
        assert_eq!(row[3], format!("web-{i}"), "{pods}");
        assert_eq!(row[4], "Running", "{pods}");
    }
    // OrderedReady: each pod was created only after the one before it ran.
    let order = server.ok(
        33,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=StatefulSet,reason=SuccessfulCreate",
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ],
    );
    let created: Vec<&str> = order
        .lines()
        .filter(|l| l.starts_with("create Pod"))
        .collect();
    assert_eq!(
        created,
        [
            "create Pod web-0 in StatefulSet web successful",
            "create Pod web-1 in StatefulSet web successful",
            "create Pod web-2 in StatefulSet web successful",
        ],
        "{order}"
    );
    let claims = server.ok(33, &["get", "pvc", "-o", "name"]);
    assert_eq!(
        lines(&claims),
        [
            "persistentvolumeclaim/data-web-0",
            "persistentvolumeclaim/data-web-1",
            "persistentvolumeclaim/data-web-2"
        ]
    );
    let status = server.ok(
        33,
        &[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.status.replicas} {.status.readyReplicas} {.status.currentReplicas} {.status.updatedReplicas} {.status.availableReplicas}",
        ],
    );
    assert_eq!(status, "3 3 3 3 3");
    let revisions = server.ok(33, &["get", "controllerrevisions", "-o", "name"]);
    assert_eq!(lines(&revisions).len(), 1, "{revisions}");

    // A new template rolls out from the highest ordinal down.
    server.ok(27, &["set", "image", "statefulset/web", "nginx=nginx:2"]);
    let out = server.ok(
        27,
        &["rollout", "status", "statefulset/web", "--timeout=90s"],
    );
    // kubectl 1.27 reports a (defaulted) partition of 0 as a partitioned roll out.
    assert!(out.contains("complete"), "{out}");
    let images = server.ok(
        33,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
        ],
    );
    assert_eq!(lines(&images), ["nginx:2", "nginx:2", "nginx:2"]);
    let revs = server.ok(
        33,
        &[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.status.currentRevision} {.status.updateRevision}",
        ],
    );
    let (current, update) = revs.split_once(' ').unwrap();
    assert_eq!(current, update);
    let hashes = server.ok(
        33,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.metadata.labels.controller-revision-hash}{\"\\n\"}{end}",
        ],
    );
    assert!(hashes.lines().all(|h| h == update), "{hashes} vs {update}");

    // Scaling down removes the highest ordinal.
    server.ok(33, &["scale", "statefulset", "web", "--replicas=2"]);
    wait_for(
        &server,
        &["get", "pods", "-l", "app=web", "-o", "name"],
        Duration::from_secs(60),
        "web-2 is removed",
        |out| lines(out) == ["pod/web-0", "pod/web-1"],
    );
}

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      nodeSelector: {type: kwok}
      containers:
      - name: agent
        image: agent
"#;

#[test]
fn daemonset_runs_one_pod_per_node_and_follows_nodes() {
    let server = Server::start_with(&["--simulate"]);
    apply(&server, 33, &nodes(&["node-0", "node-1"]));
    // A node the selector leaves out, and one whose taint the pods do not tolerate.
    apply(
        &server,
        33,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: other\n  labels:\n    type: real\n",
    );
    apply(
        &server,
        33,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: tainted\n  labels:\n    type: kwok\nspec:\n  taints:\n  - key: dedicated\n    value: db\n    effect: NoSchedule\n",
    );
    apply(&server, 33, DAEMONSET);
    let out = server.ok(
        33,
        &["rollout", "status", "daemonset/agent", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let placement = "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}";
    let on = server.ok(33, &["get", "pods", "-l", "app=agent", "-o", placement]);
    assert_eq!(lines(&on), ["node-0", "node-1"]);
    let status = server.ok(
        33,
        &[
            "get",
            "ds",
            "agent",
            "-o",
            "jsonpath={.status.desiredNumberScheduled} {.status.currentNumberScheduled} {.status.numberReady} {.status.updatedNumberScheduled} {.status.numberAvailable} {.status.numberMisscheduled}",
        ],
    );
    assert_eq!(status, "2 2 2 2 2 0");
    let affinity = server.ok(
        33,
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[0].spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key}",
        ],
    );
    assert_eq!(affinity, "metadata.name");

    // A new node gets a pod; a removed node's pod goes away.
    apply(&server, 27, &nodes(&["node-2"]));
    wait_for(
        &server,
        &["get", "pods", "-l", "app=agent", "-o", placement],
        Duration::from_secs(60),
        "a pod on node-2",
        |out| lines(out) == ["node-0", "node-1", "node-2"],
    );
    server.ok(33, &["delete", "node", "node-0"]);
    wait_for(
        &server,
        &["get", "pods", "-l", "app=agent", "-o", placement],
        Duration::from_secs(60),
        "no pod for node-0",
        |out| lines(out) == ["node-1", "node-2"],
    );
    let out = server.ok(
        27,
        &["rollout", "status", "daemonset/agent", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");

    // A template change rolls out to every node.
    server.ok(33, &["set", "image", "daemonset/agent", "agent=agent:2"]);
    let out = server.ok(
        33,
        &["rollout", "status", "daemonset/agent", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let images = wait_for(
        &server,
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
        ],
        Duration::from_secs(60),
        "only new pods",
        |out| lines(out).len() == 2,
    );
    assert_eq!(lines(&images), ["agent:2", "agent:2"]);
    let revisions = server.ok(33, &["get", "controllerrevisions", "-o", "name"]);
    assert_eq!(lines(&revisions).len(), 2, "{revisions}");
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - name: http
          containerPort: 8080
        resources:
          requests:
            cpu: 100m
            memory: 64Mi
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {tier: front}
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: Service
metadata:
  name: manual
spec:
  ports:
  - port: 5432
---
apiVersion: v1
kind: Endpoints
metadata:
  name: manual
subsets:
- addresses:
  - ip: 192.168.1.1
  ports:
  - port: 5432
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: quota
spec:
  hard:
    pods: "10"
    requests.cpu: "2"
    requests.memory: 1Gi
    services: "5"
"#;

#[test]
fn services_get_endpoints_and_quotas_count_pods() {
    let server = Server::start_with(&["--simulate"]);
    apply(&server, 33, &nodes(&["node-0"]));
    apply(&server, 33, WEB);
    server.ok(
        33,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    );
    let pod_ips = || {
        lines(&server.ok(
            33,
            &[
                "get",
                "pods",
                "-l",
                "app=web",
                "--field-selector=status.phase=Running",
                "-o",
                "jsonpath={range .items[*]}{.status.podIP}{\"\\n\"}{end}",
            ],
        ))
    };
    let ips = pod_ips();
    assert_eq!(ips.len(), 2, "{ips:?}");
    let endpoints = "jsonpath={range .subsets[*].addresses[*]}{.ip}{\"\\n\"}{end}";
    wait_for(
        &server,
        &["get", "endpoints", "web", "-o", endpoints],
        Duration::from_secs(30),
        "Endpoints list the pods",
        |out| lines(out) == ips,
    );
    let meta = server.ok(
        33,
        &[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[0].ports[0].port} {.subsets[0].ports[0].name} {.metadata.labels.tier} {.metadata.labels.endpoints\\.kubernetes\\.io/managed-by} {.subsets[0].addresses[0].targetRef.kind}",
        ],
    );
    assert_eq!(meta, "8080 http front endpoint-controller Pod");
    let slice_ips =
        "jsonpath={range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready}{\"\\n\"}{end}";
    let want: Vec<String> = ips.iter().map(|ip| format!("{ip} true")).collect();
    wait_for(
        &server,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            slice_ips,
        ],
        Duration::from_secs(30),
        "the EndpointSlice lists the pods",
        |out| lines(out) == want,
    );
    let slice = server.ok(
        33,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[0].addressType} {.items[0].ports[0].port} {.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} {.items[0].metadata.ownerReferences[0].name}",
        ],
    );
    assert_eq!(slice, "IPv4 8080 endpointslice-controller.k8s.io web");

    // Without a selector, the hand-written Endpoints stay as they are and get no slice.
    let manual = server.ok(
        33,
        &[
            "get",
            "endpoints",
            "manual",
            "-o",
            "jsonpath={.subsets[0].addresses[0].ip}",
        ],
    );
    assert_eq!(manual, "192.168.1.1");
    let slices = server.ok(
        33,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=manual",
            "-o",
            "name",
        ],
    );
    assert_eq!(slices.trim(), "");

    // The quota counts the running pods and their requests, and the services (`kubernetes`
    // included).
    let used = "jsonpath={.status.used.pods} {.status.used.requests\\.cpu} {.status.used.requests\\.memory} {.status.used.services} {.status.hard.pods}";
    wait_for(
        &server,
        &["get", "resourcequota", "quota", "-o", used],
        Duration::from_secs(30),
        "quota usage of two pods",
        |out| out == "2 200m 128Mi 3 10",
    );

    // Scaling down shrinks the Endpoints, the slice and the quota usage.
    server.ok(33, &["scale", "deployment", "web", "--replicas=1"]);
    let remaining = wait_for(
        &server,
        &["get", "pods", "-l", "app=web", "-o", "name"],
        Duration::from_secs(30),
        "one pod left",
        |out| lines(out).len() == 1,
    );
    assert_eq!(lines(&remaining).len(), 1);
    let ips = pod_ips();
    wait_for(
        &server,
        &["get", "endpoints", "web", "-o", endpoints],
        Duration::from_secs(30),
        "Endpoints follow the scale-down",
        |out| lines(out) == ips,
    );
    wait_for(
        &server,
        &["get", "resourcequota", "quota", "-o", used],
        Duration::from_secs(30),
        "quota usage of one pod",
        |out| out == "1 100m 64Mi 3 10",
    );
}

fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

#[test]
fn a_due_cronjob_creates_its_job() {
    let server = Server::start();
    apply(
        &server,
        33,
        r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "*/5 * * * *"
  suspend: true
  jobTemplate:
    metadata:
      labels: {app: tick}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: work
            image: busybox
"#,
    );
    // As if the last run was twelve minutes ago: the latest five-minute mark since then is due.
    let before = std::time::SystemTime::now();
    let last = rfc3339(before - Duration::from_secs(12 * 60));
    server.ok(
        33,
        &[
            "patch",
            "cronjob",
            "tick",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!("{{\"status\":{{\"lastScheduleTime\":\"{last}\"}}}}"),
        ],
    );
    server.ok(
        33,
        &[
            "patch",
            "cronjob",
            "tick",
            "--type=merge",
            "-p",
            "{\"spec\":{\"suspend\":false}}",
        ],
    );
    let jobs = wait_for(
        &server,
        &[
            "get",
            "jobs",
            "-l",
            "app=tick",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp} {.metadata.ownerReferences[0].kind}{\"\\n\"}{end}",
        ],
        Duration::from_secs(30),
        "the CronJob creates a Job",
        |out| !out.trim().is_empty(),
    );
    let after = std::time::SystemTime::now();
    let row: Vec<&str> = jobs.trim().split(' ').collect();
    assert_eq!(row.len(), 3, "{jobs}");
    let scheduled: jiff::Timestamp = row[1].parse().unwrap();
    let secs = scheduled.as_second();
    assert_eq!(secs % 300, 0, "{jobs}");
    let epoch = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
    };
    assert!(secs > epoch(before) - 300 && secs <= epoch(after), "{jobs}");
    assert_eq!(row[0], format!("tick-{}", secs / 60));
    assert_eq!(row[2], "CronJob");
    let status = wait_for(
        &server,
        &[
            "get",
            "cronjob",
            "tick",
            "-o",
            "jsonpath={.status.lastScheduleTime} {.status.active[0].name}",
        ],
        Duration::from_secs(30),
        "the CronJob status lists the active Job",
        |out| out.split(' ').nth(1).is_some_and(|n| !n.is_empty()),
    );
    assert_eq!(status, format!("{} {}", row[1], row[0]));
    // Only the latest missed time runs.
    assert_eq!(lines(&jobs).len(), 1, "{jobs}");
}

#[test]
fn a_not_ready_node_is_tainted_and_its_pods_evicted() {
    let server = Server::start_with(&["--controllers", "*,-daemonset"]);
    let now = rfc3339(std::time::SystemTime::now());
    apply(
        &server,
        33,
        &format!(
            r#"
apiVersion: v1
kind: Node
metadata:
  name: node-a
status:
  conditions:
  - type: Ready
    status: "True"
    reason: KubeletReady
    lastHeartbeatTime: "{now}"
    lastTransitionTime: "{now}"
---
apiVersion: v1
kind: Pod
metadata:
  name: brief
spec:
  nodeName: node-a
  tolerations:
  - key: node.kubernetes.io/not-ready
    operator: Exists
    effect: NoExecute
    tolerationSeconds: 2
  containers:
  - name: c
    image: busybox
---
apiVersion: v1
kind: Pod
metadata:
  name: steadfast
spec:
  nodeName: node-a
  tolerations:
  - key: node.kubernetes.io/not-ready
    operator: Exists
    effect: NoExecute
  containers:
  - name: c
    image: busybox
"#
        ),
    );
    let taints = "jsonpath={range .spec.taints[*]}{.key}:{.effect}{\"\\n\"}{end}";
    let out = server.ok(33, &["get", "node", "node-a", "-o", taints]);
    assert_eq!(out.trim(), "", "a Ready node has no taints");
    server.ok(
        33,
        &[
            "patch",
            "node",
            "node-a",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(
                "{{\"status\":{{\"conditions\":[{{\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"KubeletNotReady\",\"lastHeartbeatTime\":\"{now}\",\"lastTransitionTime\":\"{now}\"}}]}}}}"
            ),
        ],
    );
    wait_for(
        &server,
        &["get", "node", "node-a", "-o", taints],
        Duration::from_secs(30),
        "the not-ready taints",
        |out| {
            lines(out)
                == [
                    "node.kubernetes.io/not-ready:NoExecute",
                    "node.kubernetes.io/not-ready:NoSchedule",
                ]
        },
    );
    // Evicted after its two seconds: deleted, which leaves a bound pod terminating.
    wait_for(
        &server,
        &[
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
        ],
        Duration::from_secs(30),
        "the pod with a short toleration is evicted",
        |out| {
            let rows = lines(out);
            let brief_gone = !rows.iter().any(|r| r == "brief");
            brief_gone && rows.iter().any(|r| r == "steadfast")
        },
    );
    let events = server.ok(
        33,
        &[
            "get",
            "events",
            "--field-selector",
            "reason=TaintManagerEviction",
            "-o",
            "name",
        ],
    );
    assert_eq!(lines(&events).len(), 1, "{events}");

    // Ready again: the taints go.
    server.ok(
        33,
        &[
            "patch",
            "node",
            "node-a",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(
                "{{\"status\":{{\"conditions\":[{{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"KubeletReady\",\"lastHeartbeatTime\":\"{now}\",\"lastTransitionTime\":\"{now}\"}}]}}}}"
            ),
        ],
    );
    wait_for(
        &server,
        &["get", "node", "node-a", "-o", taints],
        Duration::from_secs(30),
        "no taints once Ready",
        |out| out.trim().is_empty(),
    );
    let steadfast = server.ok(
        33,
        &[
            "get",
            "pod",
            "steadfast",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ],
    );
    assert_eq!(steadfast, "");
}

#[test]
fn unknown_controller_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::kwok_bin())
        .args(["apiserver", "--data-dir"])
        .arg(dir.path())
        .args(["--secure-port", &common::free_port().to_string()])
        .args(["--controllers", "*,-bogus"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bogus") && stderr.contains("known controllers"),
        "{stderr}"
    );
}
