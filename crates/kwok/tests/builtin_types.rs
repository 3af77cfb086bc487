//! Black-box tests: the server serves kube-apiserver 1.33's set of built-in resource types, and
//! its networking, admission registration, API registration, flow control and CSI kinds behave
//! as kube-apiserver's do (tables, defaulting, validation, watch, bootstrap objects), with
//! kubectl 1.27 and 1.33.

mod common;

use common::Server;

/// `kubectl api-resources -o name` of a new kube-apiserver 1.33 cluster.
const API_RESOURCES_1_33: &[&str] = &[
    "bindings",
    "componentstatuses",
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "pods",
    "podtemplates",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "serviceaccounts",
    "services",
    "mutatingwebhookconfigurations.admissionregistration.k8s.io",
    "validatingadmissionpolicies.admissionregistration.k8s.io",
    "validatingadmissionpolicybindings.admissionregistration.k8s.io",
    "validatingwebhookconfigurations.admissionregistration.k8s.io",
    "customresourcedefinitions.apiextensions.k8s.io",
    "apiservices.apiregistration.k8s.io",
    "controllerrevisions.apps",
    "daemonsets.apps",
    "deployments.apps",
    "replicasets.apps",
    "statefulsets.apps",
    "selfsubjectreviews.authentication.k8s.io",
    "tokenreviews.authentication.k8s.io",
    "localsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
    "subjectaccessreviews.authorization.k8s.io",
    "horizontalpodautoscalers.autoscaling",
    "cronjobs.batch",
    "jobs.batch",
    "certificatesigningrequests.certificates.k8s.io",
    "leases.coordination.k8s.io",
    "endpointslices.discovery.k8s.io",
    "events.events.k8s.io",
    "flowschemas.flowcontrol.apiserver.k8s.io",
    "prioritylevelconfigurations.flowcontrol.apiserver.k8s.io",
    "ingressclasses.networking.k8s.io",
    "ingresses.networking.k8s.io",
    "ipaddresses.networking.k8s.io",
    "networkpolicies.networking.k8s.io",
    "servicecidrs.networking.k8s.io",
    "runtimeclasses.node.k8s.io",
    "poddisruptionbudgets.policy",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "roles.rbac.authorization.k8s.io",
    "priorityclasses.scheduling.k8s.io",
    "csidrivers.storage.k8s.io",
    "csinodes.storage.k8s.io",
    "csistoragecapacities.storage.k8s.io",
    "storageclasses.storage.k8s.io",
    "volumeattachments.storage.k8s.io",
];

/// One object of each newly served kind, as their users write them. The webhooks and the
/// admission policy match only a group nobody serves.
const OBJECTS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec:
  controller: k8s.io/ingress-nginx
  parameters: {apiGroup: k8s.example.com, kind: IngressParameters, name: external-lb}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  ingressClassName: nginx
  tls: [{hosts: [web.example.com], secretName: web-tls}]
  rules:
  - host: web.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns}
spec:
  podSelector: {matchLabels: {app: web}}
  egress:
  - ports: [{port: 53, protocol: UDP}]
---
apiVersion: networking.k8s.io/v1
kind: ServiceCIDR
metadata: {name: extra}
spec: {cidrs: [10.100.0.0/16]}
---
apiVersion: networking.k8s.io/v1
kind: IPAddress
metadata: {name: 10.100.0.10}
spec: {parentRef: {group: "", resource: services, namespace: default, name: web}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: widgets.example.com}
webhooks:
- name: validate.widgets.example.com
  sideEffects: None
  admissionReviewVersions: [v1]
  failurePolicy: Ignore
  clientConfig: {service: {namespace: default, name: widgets, path: /validate}}
  rules: [{apiGroups: [example.com], apiVersions: [v1], operations: [CREATE], resources: [widgets]}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: widgets.example.com}
webhooks:
- name: default.widgets.example.com
  sideEffects: NoneOnDryRun
  admissionReviewVersions: [v1, v1beta1]
  failurePolicy: Ignore
  clientConfig: {url: "https://widgets.example.com/mutate"}
  rules: [{apiGroups: [example.com], apiVersions: [v1], operations: [CREATE], resources: [widgets]}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: widget-size}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules: [{apiGroups: [example.com], apiVersions: [v1], operations: [CREATE], resources: [widgets]}]
  validations: [{expression: "true"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: widget-size}
spec:
  policyName: widget-size
  validationActions: [Deny]
  paramRef: {name: limits, namespace: default, parameterNotFoundAction: Allow}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1alpha1.widgets.example.com}
spec:
  group: widgets.example.com
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 15
  insecureSkipTLSVerify: true
  service: {namespace: default, name: widgets}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {name: batch}
spec:
  type: Limited
  limited: {limitResponse: {type: Queue, queuing: {}}}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: batch-jobs}
spec:
  priorityLevelConfiguration: {name: batch}
  distinguisherMethod: {type: ByNamespace}
  rules:
  - subjects: [{kind: Group, group: {name: batch-runners}}]
    resourceRules: [{verbs: [list], apiGroups: [batch], resources: [jobs], namespaces: ["*"]}]
---
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: csi.example.com}
spec:
  tokenRequests: [{audience: vault}]
---
apiVersion: storage.k8s.io/v1
kind: CSINode
metadata: {name: node-1}
spec:
  drivers: [{name: csi.example.com, nodeID: node-1, topologyKeys: [topology.example.com/zone]}]
---
apiVersion: storage.k8s.io/v1
kind: CSIStorageCapacity
metadata: {name: zone-a}
storageClassName: fast
capacity: 100Gi
---
apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata: {name: attach-pv1}
spec:
  attacher: csi.example.com
  nodeName: node-1
  source: {persistentVolumeName: pv1}
"#;

/// The words of the header and of the row of `name` of `kubectl get <what> -o wide`.
fn table(server: &Server, minor: u32, what: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let out = server.ok(minor, &["get", what, "-o", "wide"]);
    let words = |line: &str| {
        line.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let mut lines = out.lines();
    let header = words(lines.next().unwrap_or_default());
    let row = lines
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in {out}"));
    (header, words(row))
}

fn api_resources(minor: u32) {
    let server = Server::start();
    let out = server.ok(minor, &["api-resources", "-o", "name"]);
    // kwok's own custom resource definitions are installed on top of kube-apiserver's types.
    let mut served: Vec<&str> = out
        .lines()
        .filter(|name| !name.ends_with(".kwok.x-k8s.io"))
        .collect();
    served.sort_unstable();
    let mut expected = API_RESOURCES_1_33.to_vec();
    expected.sort_unstable();
    assert_eq!(served, expected);

    let wide = server.ok(minor, &["api-resources", "--api-group="]);
    let line = |name: &str| -> Vec<String> {
        wide.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {wide}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        line("componentstatuses"),
        ["componentstatuses", "cs", "v1", "false", "ComponentStatus"]
    );
    assert_eq!(line("bindings"), ["bindings", "v1", "true", "Binding"]);
    let verbs = server.ok(minor, &["api-resources", "--api-group=", "-o", "wide"]);
    let binding_verbs = verbs.lines().find(|l| l.starts_with("bindings ")).unwrap();
    assert!(
        binding_verbs.contains("create") && !binding_verbs.contains("list"),
        "{binding_verbs}"
    );
}

#[test]
fn kubectl_1_27_lists_kube_apiserver_1_33_resources() {
    api_resources(27);
}

#[test]
fn kubectl_1_33_lists_kube_apiserver_1_33_resources() {
    api_resources(33);
}

fn tables_of_new_kinds(minor: u32) {
    let server = Server::start();
    server.ok_stdin(minor, &["apply", "-f", "-"], OBJECTS);
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "ingresses",
            "web",
            &["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
            &["web", "nginx", "web.example.com", "80,", "443"],
        ),
        (
            "ingressclasses",
            "nginx",
            &["NAME", "CONTROLLER", "PARAMETERS", "AGE"],
            &[
                "nginx",
                "k8s.io/ingress-nginx",
                "IngressParameters.k8s.example.com/external-lb",
            ],
        ),
        (
            "networkpolicies",
            "allow-dns",
            &["NAME", "POD-SELECTOR", "AGE"],
            &["allow-dns", "app=web"],
        ),
        (
            "servicecidrs",
            "extra",
            &["NAME", "CIDRS", "AGE"],
            &["extra", "10.100.0.0/16"],
        ),
        (
            "ipaddresses",
            "10.100.0.10",
            &["NAME", "PARENTREF"],
            &["10.100.0.10", "services/default/web"],
        ),
        (
            "validatingwebhookconfigurations",
            "widgets.example.com",
            &["NAME", "WEBHOOKS", "AGE"],
            &["widgets.example.com", "1"],
        ),
        (
            "mutatingwebhookconfigurations",
            "widgets.example.com",
            &["NAME", "WEBHOOKS", "AGE"],
            &["widgets.example.com", "1"],
        ),
        (
            "validatingadmissionpolicies",
            "widget-size",
            &["NAME", "VALIDATIONS", "PARAMKIND", "AGE"],
            &["widget-size", "1", "v1/ConfigMap"],
        ),
        (
            "validatingadmissionpolicybindings",
            "widget-size",
            &["NAME", "POLICYNAME", "PARAMREF", "AGE"],
            &["widget-size", "widget-size", "default/limits"],
        ),
        (
            "apiservices",
            "v1alpha1.widgets.example.com",
            &["NAME", "SERVICE", "AVAILABLE", "AGE"],
            // AVAILABLE turns from Unknown to False (ServiceNotFound) once checked.
            &["v1alpha1.widgets.example.com", "default/widgets"],
        ),
        (
            "flowschemas",
            "batch-jobs",
            &[
                "NAME",
                "PRIORITYLEVEL",
                "MATCHINGPRECEDENCE",
                "DISTINGUISHERMETHOD",
                "AGE",
                "MISSINGPL",
            ],
            &["batch-jobs", "batch", "1000", "ByNamespace"],
        ),
        (
            "prioritylevelconfigurations",
            "batch",
            &[
                "NAME",
                "TYPE",
                "NOMINALCONCURRENCYSHARES",
                "QUEUES",
                "HANDSIZE",
                "QUEUELENGTHLIMIT",
                "AGE",
            ],
            &["batch", "Limited", "30", "64", "8", "50"],
        ),
        (
            "csidrivers",
            "csi.example.com",
            &[
                "NAME",
                "ATTACHREQUIRED",
                "PODINFOONMOUNT",
                "STORAGECAPACITY",
                "TOKENREQUESTS",
                "REQUIRESREPUBLISH",
                "MODES",
                "AGE",
            ],
            &[
                "csi.example.com",
                "true",
                "false",
                "false",
                "vault",
                "false",
                "Persistent",
            ],
        ),
        (
            "csinodes",
            "node-1",
            &["NAME", "DRIVERS", "AGE"],
            &["node-1", "1"],
        ),
        (
            "csistoragecapacities",
            "zone-a",
            &["NAME", "STORAGECLASSNAME", "CAPACITY"],
            &["zone-a", "fast", "100Gi"],
        ),
        (
            "volumeattachments",
            "attach-pv1",
            &["NAME", "ATTACHER", "PV", "NODE", "ATTACHED", "AGE"],
            &["attach-pv1", "csi.example.com", "pv1", "node-1", "false"],
        ),
    ];
    for (what, name, header, cells) in cases {
        let (got_header, row) = table(&server, minor, what, name);
        assert_eq!(&got_header, header, "{what}");
        assert_eq!(&row[..cells.len()], *cells, "{what}: {row:?}");
    }

    // Defaults are kube-apiserver's.
    let policy = server.get_json(minor, &["networkpolicy", "allow-dns"]);
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let hooks = server.get_json(
        minor,
        &["mutatingwebhookconfiguration", "widgets.example.com"],
    );
    let hook = &hooks["webhooks"][0];
    assert_eq!(hook["matchPolicy"], "Equivalent");
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(hook["reinvocationPolicy"], "Never");
    assert_eq!(hook["rules"][0]["scope"], "*");
    let vap = server.get_json(minor, &["validatingadmissionpolicy", "widget-size"]);
    assert_eq!(vap["spec"]["failurePolicy"], "Fail");
    assert_eq!(vap["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
    let driver = server.get_json(minor, &["csidriver", "csi.example.com"]);
    assert_eq!(driver["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
}

#[test]
fn kubectl_1_27_prints_the_new_kinds_as_kube_apiserver() {
    tables_of_new_kinds(27);
}

#[test]
fn kubectl_1_33_prints_the_new_kinds_as_kube_apiserver() {
    tables_of_new_kinds(33);
}

const WEBHOOK_WITHOUT_SIDE_EFFECTS: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: bad.example.com}
webhooks:
- name: bad.example.com
  admissionReviewVersions: [v1]
  clientConfig: {url: "https://bad.example.com/validate"}
"#;

const INVALID: &[(&str, &str)] = &[
    (
        WEBHOOK_WITHOUT_SIDE_EFFECTS,
        r#"The ValidatingWebhookConfiguration "bad.example.com" is invalid: webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"#,
    ),
    (
        r#"{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "short"}, "webhooks": [{"name": "short.io", "sideEffects": "None",
            "admissionReviewVersions": ["v1"], "clientConfig": {"url": "http://short.io/hook"}}]}"#,
        r#"webhooks[0].clientConfig.url: Invalid value: "http": 'https' is the only allowed URL scheme; desired format: https://host[/path]"#,
    ),
    (
        r#"{"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1.widgets.example.com"}, "spec": {"group": "widgets.example.com",
            "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 10}}"#,
        r#"metadata.name: Invalid value: "v1.widgets.example.com": must be `spec.version+"."+spec.group`: "v1beta1.widgets.example.com""#,
    ),
    (
        r#"{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "no-type"},
            "spec": {"rules": [{"http": {"paths": [{"path": "/",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}"#,
        "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
    ),
    (
        r#"{"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "odd"},
            "spec": {"cidrs": ["10.200.0.1/16"]}}"#,
        r#"spec.cidrs[0]: Invalid value: "10.200.0.1/16": must be in canonical form ("10.200.0.0/16")"#,
    ),
];

fn invalid_objects(minor: u32) {
    let server = Server::start();
    for (manifest, message) in INVALID {
        let err = server.kubectl_stdin(minor, &["create", "-f", "-"], Some(manifest));
        assert!(!err.status.success(), "{manifest} was accepted");
        let stderr = String::from_utf8_lossy(&err.stderr);
        assert!(stderr.contains(message), "{message}\nnot in\n{stderr}");
    }
    // The bootstrap ServiceCIDR keeps its ranges.
    let out = server.kubectl(
        minor,
        &[
            "patch",
            "servicecidr",
            "kubernetes",
            "--type=merge",
            "-p",
            r#"{"spec": {"cidrs": ["10.0.0.0/16"]}}"#,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("field is immutable"), "{stderr}");
}

#[test]
fn kubectl_1_27_sees_invalid_objects_refused() {
    invalid_objects(27);
}

#[test]
fn kubectl_1_33_sees_invalid_objects_refused() {
    invalid_objects(33);
}

fn bootstrap_objects(minor: u32) {
    let server = Server::start();
    let names = |what: &str| -> Vec<String> {
        let out = server.ok(minor, &["get", what, "-o", "name"]);
        let mut names: Vec<String> = out
            .lines()
            .map(|l| l.rsplit('/').next().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names("flowschemas"),
        [
            "catch-all",
            "endpoint-controller",
            "exempt",
            "global-default",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-system-service-accounts",
            "probes",
            "service-accounts",
            "system-leader-election",
            "system-node-high",
            "system-nodes",
            "workload-leader-election"
        ]
    );
    assert_eq!(
        names("prioritylevelconfigurations"),
        [
            "catch-all",
            "exempt",
            "global-default",
            "leader-election",
            "node-high",
            "system",
            "workload-high",
            "workload-low"
        ]
    );
    let (_, row) = table(&server, minor, "flowschemas", "exempt");
    assert_eq!(row[1..4], ["exempt", "1", "<none>"]);
    assert_eq!(row.last().unwrap(), "False");
    let (_, row) = table(
        &server,
        minor,
        "prioritylevelconfigurations",
        "workload-low",
    );
    assert_eq!(row[1..6], ["Limited", "100", "128", "6", "50"]);
    let level = server.get_json(minor, &["prioritylevelconfiguration", "exempt"]);
    assert_eq!(
        level["metadata"]["annotations"]["apf.kubernetes.io/autoupdate-spec"],
        "true"
    );

    let (_, row) = table(&server, minor, "servicecidrs", "kubernetes");
    assert_eq!(row[1], "10.96.0.0/12");
    let cidr = server.get_json(minor, &["servicecidr", "kubernetes"]);
    assert_eq!(cidr["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(cidr["status"]["conditions"][0]["status"], "True");

    let services = names("apiservices");
    for name in ["v1.", "v1.apps", "v1.networking.k8s.io", "v2.autoscaling"] {
        assert!(services.iter().any(|s| s == name), "{name}: {services:?}");
    }
    let (_, row) = table(&server, minor, "apiservices", "v1.apps");
    assert_eq!(row[1..3], ["Local", "True"]);
    let apps = server.get_json(minor, &["apiservice", "v1.apps"]);
    assert_eq!(apps["spec"]["groupPriorityMinimum"], 17800);
    assert_eq!(
        apps["metadata"]["labels"]["kube-aggregator.kubernetes.io/automanaged"],
        "onstart"
    );
    assert_eq!(
        apps["status"]["conditions"][0]["message"],
        "Local APIServices are always available"
    );

    // Component statuses are answered, healthy, and only read.
    let out = server.kubectl(minor, &["get", "componentstatuses"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("v1 ComponentStatus is deprecated in v1.19+"),
        "{stderr}"
    );
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "STATUS", "MESSAGE", "ERROR"]);
    let mut rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ["controller-manager", "Healthy", "ok"],
            ["etcd-0", "Healthy", "ok"],
            ["scheduler", "Healthy", "ok"]
        ]
    );
    let err = server.fails(minor, &["delete", "cs", "scheduler"]);
    assert!(err.contains("MethodNotAllowed"), "{err}");
    let err = server.fails(
        minor,
        &["get", "--raw", "/api/v1/namespaces/default/bindings"],
    );
    assert!(err.contains("MethodNotAllowed"), "{err}");
}

#[test]
fn kubectl_1_27_finds_the_bootstrap_objects() {
    bootstrap_objects(27);
}

#[test]
fn kubectl_1_33_finds_the_bootstrap_objects() {
    bootstrap_objects(33);
}

/// A watch of a newly served kind sees an object created while it runs.
#[test]
fn new_kinds_can_be_watched() {
    let server = Server::start();
    std::thread::scope(|scope| {
        let watch = scope.spawn(|| {
            server.kubectl(
                33,
                &[
                    "get",
                    "ingressclasses",
                    "--watch-only",
                    "-o",
                    "name",
                    "--request-timeout=6s",
                ],
            )
        });
        std::thread::sleep(std::time::Duration::from_secs(2));
        server.ok_stdin(
            33,
            &["apply", "-f", "-"],
            "{\"apiVersion\": \"networking.k8s.io/v1\", \"kind\": \"IngressClass\",
              \"metadata\": {\"name\": \"watched\"}, \"spec\": {\"controller\": \"example.com/ingress\"}}",
        );
        let out = watch.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("ingressclass.networking.k8s.io/watched"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Priority and DefaultStorageClass admission, and the system PriorityClasses.
fn builtin_admission(minor: u32) {
    let server = Server::start();
    let critical = server.get_json(minor, &["priorityclass", "system-node-critical"]);
    assert_eq!(critical["value"], 2_000_001_000);
    server.ok_stdin(
        minor,
        &["apply", "-f", "-"],
        r#"apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high
value: 1000
preemptionPolicy: Never
---
apiVersion: v1
kind: Pod
metadata:
  name: important
spec:
  priorityClassName: high
  containers:
  - name: c
    image: busybox
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: example.com/disk
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
"#,
    );
    let pod = server.get_json(minor, &["pod", "important"]);
    assert_eq!(pod["spec"]["priority"], 1000);
    assert_eq!(pod["spec"]["preemptionPolicy"], "Never");
    let claim = server.get_json(minor, &["pvc", "data"]);
    assert_eq!(claim["spec"]["storageClassName"], "standard");

    let refused = server.fails(
        minor,
        &[
            "run",
            "orphan",
            "--image=busybox",
            "--overrides",
            r#"{"spec":{"priorityClassName":"nope"}}"#,
        ],
    );
    assert!(
        refused.contains("pods \"orphan\" is forbidden: no PriorityClass with name nope was found"),
        "{refused}"
    );
    server.ok_stdin(
        minor,
        &["apply", "-f", "-"],
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: everyday\nvalue: 7\nglobalDefault: true\n",
    );
    server.ok(minor, &["run", "plain", "--image=busybox"]);
    let plain = server.get_json(minor, &["pod", "plain"]);
    assert_eq!(plain["spec"]["priority"], 7);
    assert_eq!(plain["spec"]["priorityClassName"], "everyday");
}

#[test]
fn kubectl_1_27_builtin_admission() {
    builtin_admission(27);
}

#[test]
fn kubectl_1_33_builtin_admission() {
    builtin_admission(33);
}
