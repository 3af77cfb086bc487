//! `meta.k8s.io/v1 Table` rendering: the columns kubectl prints for each built-in kind.

use crate::objects::JsonAt;
use serde_json::{Value, json};

use crate::resources::ResourceType;

/// One column: name, type, priority (0 = always shown, 1 = `-o wide`), description.
use crate::printers::{AGE, Column, NAME};

fn columns(r: &ResourceType) -> Vec<Column> {
    if let Some(custom) = r.custom {
        if custom.printer_columns.is_empty() {
            return vec![NAME, AGE];
        }
        let mut cols = vec![NAME];
        for c in &custom.printer_columns {
            let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
            cols.push((
                leak(&c.name),
                leak(&c.type_),
                c.priority,
                leak(&c.description),
            ));
        }
        return cols;
    }
    match (r.group, r.plural) {
        ("", "pods") => vec![
            NAME,
            (
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            (
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            (
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            (
                "IP",
                "string",
                1,
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            (
                "Node",
                "string",
                1,
                "NodeName is a request to schedule this pod onto a specific node.",
            ),
            (
                "Nominated Node",
                "string",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            (
                "Readiness Gates",
                "string",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        ("", "nodes") => vec![
            NAME,
            ("Status", "string", 0, "The status of the node"),
            ("Roles", "string", 0, "The roles of the node"),
            AGE,
            (
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
            (
                "Internal-IP",
                "string",
                1,
                "List of addresses reachable to the node. Queried from cloud provider, if available.",
            ),
            (
                "External-IP",
                "string",
                1,
                "List of addresses reachable to the node. Queried from cloud provider, if available.",
            ),
            (
                "OS-Image",
                "string",
                1,
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            ),
            (
                "Kernel-Version",
                "string",
                1,
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            ),
            (
                "Container-Runtime",
                "string",
                1,
                "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            ),
        ],
        ("", "namespaces") => vec![
            NAME,
            ("Status", "string", 0, "The status of the namespace"),
            AGE,
        ],
        ("", "services") => vec![
            NAME,
            (
                "Type",
                "string",
                0,
                "type determines how the Service is exposed.",
            ),
            (
                "Cluster-IP",
                "string",
                0,
                "clusterIP is the IP address of the service.",
            ),
            (
                "External-IP",
                "string",
                0,
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            (
                "Port(s)",
                "string",
                0,
                "The list of ports that are exposed by this service.",
            ),
            AGE,
            (
                "Selector",
                "string",
                1,
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        ("", "configmaps") => vec![
            NAME,
            (
                "Data",
                "integer",
                0,
                "Data contains the configuration data.",
            ),
            AGE,
        ],
        ("", "secrets") => vec![
            NAME,
            ("Type", "string", 0, "The type of the secret"),
            ("Data", "integer", 0, "Data contains the secret data."),
            AGE,
        ],
        ("", "serviceaccounts") => vec![
            NAME,
            (
                "Secrets",
                "integer",
                0,
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            ),
            AGE,
        ],
        ("", "endpoints") => vec![
            NAME,
            (
                "Endpoints",
                "string",
                0,
                "Endpoints is the list of endpoints in the service.",
            ),
            AGE,
        ],
        ("", "events") | ("events.k8s.io", "events") => vec![
            (
                "Last Seen",
                "string",
                0,
                "Time when this Event was last seen",
            ),
            (
                "Type",
                "string",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            ("Reason", "string", 0, "Reason is why the action was taken."),
            (
                "Object",
                "string",
                0,
                "The object that this event is about.",
            ),
            (
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
        ],
        ("apps", "deployments") => vec![
            NAME,
            ("Ready", "string", 0, "Number of the pod with ready state"),
            (
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            (
                "Available",
                "string",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            AGE,
            (
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            (
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            (
                "Selector",
                "string",
                1,
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ],
        ("apps", "replicasets") | ("", "replicationcontrollers") => vec![
            NAME,
            (
                "Desired",
                "integer",
                0,
                "Replicas is the number of desired replicas.",
            ),
            (
                "Current",
                "integer",
                0,
                "Replicas is the most recently observed number of replicas.",
            ),
            (
                "Ready",
                "integer",
                0,
                "The number of ready replicas for this replica set.",
            ),
            AGE,
            (
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            (
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            (
                "Selector",
                "string",
                1,
                "Selector is a label query over pods that should match the replica count.",
            ),
        ],
        ("apps", "statefulsets") => vec![
            NAME,
            ("Ready", "string", 0, "Number of the pod with ready state"),
            AGE,
            (
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            (
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
        ],
        ("apps", "daemonsets") => vec![
            NAME,
            (
                "Desired",
                "integer",
                0,
                "The total number of nodes that should be running the daemon pod.",
            ),
            (
                "Current",
                "integer",
                0,
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
            ),
            (
                "Ready",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            (
                "Up-to-date",
                "integer",
                0,
                "The total number of nodes that are running updated daemon pod",
            ),
            (
                "Available",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
            ),
            (
                "Node Selector",
                "string",
                0,
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            AGE,
        ],
        ("batch", "jobs") => vec![
            NAME,
            ("Status", "string", 0, "Status of the job."),
            (
                "Completions",
                "string",
                0,
                "The desired number of successfully finished pods the job should be run with.",
            ),
            (
                "Duration",
                "string",
                0,
                "Time required to complete the job.",
            ),
            AGE,
        ],
        ("batch", "cronjobs") => vec![
            NAME,
            ("Schedule", "string", 0, "The schedule in Cron format"),
            (
                "Timezone",
                "string",
                0,
                "The time zone name for the given schedule",
            ),
            (
                "Suspend",
                "boolean",
                0,
                "This flag tells the controller to suspend subsequent executions.",
            ),
            (
                "Active",
                "integer",
                0,
                "A list of pointers to currently running jobs.",
            ),
            (
                "Last Schedule",
                "string",
                0,
                "Information when was the last time the job was successfully scheduled.",
            ),
            AGE,
        ],
        ("coordination.k8s.io", "leases") => vec![
            NAME,
            (
                "Holder",
                "string",
                0,
                "holderIdentity contains the identity of the holder of a current lease.",
            ),
            AGE,
        ],
        ("scheduling.k8s.io", "priorityclasses") => vec![
            NAME,
            ("Value", "integer", 0, "The value of this priority class."),
            (
                "Global-Default",
                "boolean",
                0,
                "globalDefault specifies whether this PriorityClass should be considered as the default priority.",
            ),
            AGE,
        ],
        (group, plural) => {
            crate::printers::columns(group, plural).unwrap_or_else(crate::printers::default_columns)
        }
    }
}

/// Go's `duration.HumanDuration`, as kubectl prints ages.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        match s % 60 {
            0 => format!("{m}m"),
            r => format!("{m}m{r}s"),
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            r => format!("{h}h{r}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        match h % 24 {
            0 => format!("{d}d"),
            r => format!("{d}d{r}h"),
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        match d % 365 {
            0 => format!("{y}y"),
            r => format!("{y}y{r}d"),
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn age(ts: Option<&str>, now: i64) -> String {
    match ts.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => human_duration(now - t.as_second()),
        None => "<unknown>".into(),
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.at(ptr).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, ptr: &str) -> i64 {
    v.at(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn template_containers(obj: &Value, ptr: &str) -> (String, String) {
    let cs = obj.at(ptr).and_then(Value::as_array);
    let names: Vec<&str> = cs.into_iter().flatten().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = cs.into_iter().flatten().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

pub(crate) fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else {
        return "<none>".into();
    };
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = s(e, "/key");
            let vals: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            parts.push(match s(e, "/operator") {
                "In" => format!("{key} in ({})", vals.join(",")),
                "NotIn" => format!("{key} notin ({})", vals.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                _ => key.to_string(),
            });
        }
    }
    or_none(parts.join(","))
}

pub(crate) fn map_selector(m: Option<&Value>) -> String {
    let parts: Vec<String> = m
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    or_none(parts.join(","))
}

fn pod_status(pod: &Value) -> String {
    let mut reason = s(pod, "/status/phase").to_string();
    if !s(pod, "/status/reason").is_empty() {
        reason = s(pod, "/status/reason").to_string();
    }
    for c in pod
        .at("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(w) = c.at("/state/waiting/reason").and_then(Value::as_str) {
            reason = w.to_string();
        } else if let Some(t) = c.at("/state/terminated") {
            let r = s(t, "/reason");
            reason = if r.is_empty() {
                format!("ExitCode:{}", n(t, "/exitCode"))
            } else {
                r.to_string()
            };
        }
    }
    if pod.at("/metadata/deletionTimestamp").is_some() {
        if s(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else {
            reason = "Terminating".into();
        }
    }
    if reason.is_empty() {
        reason = "Pending".into();
    }
    reason
}

fn custom_cells(
    custom: &crate::crd::CustomType,
    o: &Value,
    name: Value,
    created: String,
    now: i64,
) -> Vec<Value> {
    if custom.printer_columns.is_empty() {
        return vec![name, json!(created)];
    }
    let mut out = vec![name];
    for c in &custom.printer_columns {
        let v = crate::crd::eval_json_path(o, &c.json_path);
        out.push(match (c.type_.as_str(), v) {
            ("date", Some(Value::String(t))) => json!(age(Some(&t), now)),
            (_, Some(Value::String(t))) => json!(t),
            (_, Some(Value::Null)) | (_, None) => json!(""),
            ("string", Some(other)) => json!(other.to_string()),
            (_, Some(other)) => other,
        });
    }
    out
}

fn cells(r: &ResourceType, o: &Value, now: i64) -> Vec<Value> {
    let name = json!(s(o, "/metadata/name"));
    let created = age(
        o.at("/metadata/creationTimestamp").and_then(Value::as_str),
        now,
    );
    if let Some(custom) = r.custom {
        return custom_cells(custom, o, name, created, now);
    }
    match (r.group, r.plural) {
        ("", "pods") => {
            let total = o
                .at("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let statuses = o.at("/status/containerStatuses").and_then(Value::as_array);
            let ready = statuses
                .into_iter()
                .flatten()
                .filter(|c| c.get("ready") == Some(&json!(true)))
                .count();
            let restarts: i64 = statuses
                .into_iter()
                .flatten()
                .map(|c| n(c, "/restartCount"))
                .sum();
            let gates = o.at("/spec/readinessGates").and_then(Value::as_array);
            let gate_text = match gates {
                Some(g) if !g.is_empty() => format!("0/{}", g.len()),
                _ => "<none>".into(),
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                json!(created),
                json!(or_none(s(o, "/status/podIP").to_string())),
                json!(or_none(s(o, "/spec/nodeName").to_string())),
                json!(or_none(s(o, "/status/nominatedNodeName").to_string())),
                json!(gate_text),
            ]
        }
        ("", "nodes") => {
            let conds = o.at("/status/conditions").and_then(Value::as_array);
            let ready = conds
                .into_iter()
                .flatten()
                .find(|c| s(c, "/type") == "Ready");
            let mut status = match ready.map(|c| s(c, "/status")) {
                Some("True") => "Ready".to_string(),
                Some(_) => "NotReady".to_string(),
                None => "Unknown".to_string(),
            };
            if o.at("/spec/unschedulable") == Some(&json!(true)) {
                status.push_str(",SchedulingDisabled");
            }
            let mut roles: Vec<String> = o
                .at("/metadata/labels")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        Some(role.to_string())
                    } else if k == "kubernetes.io/role" {
                        v.as_str().map(String::from)
                    } else {
                        None
                    }
                })
                .filter(|r| !r.is_empty())
                .collect();
            roles.sort();
            roles.dedup();
            let addr = |t: &str| -> String {
                o.at("/status/addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|a| s(a, "/type") == t)
                    .map(|a| s(a, "/address").to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            vec![
                name,
                json!(status),
                json!(or_none(roles.join(","))),
                json!(created),
                json!(s(o, "/status/nodeInfo/kubeletVersion")),
                json!(addr("InternalIP")),
                json!(addr("ExternalIP")),
                json!(or_none(s(o, "/status/nodeInfo/osImage").to_string())),
                json!(or_none(s(o, "/status/nodeInfo/kernelVersion").to_string())),
                json!(or_none(
                    s(o, "/status/nodeInfo/containerRuntimeVersion").to_string()
                )),
            ]
        }
        ("", "namespaces") => vec![name, json!(s(o, "/status/phase")), json!(created)],
        ("", "services") => {
            let ports: Vec<String> = o
                .at("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) => format!("{}:{np}/{proto}", n(p, "/port")),
                        None => format!("{}/{proto}", n(p, "/port")),
                    }
                })
                .collect();
            let typ = s(o, "/spec/type");
            let external: Vec<String> = o
                .at("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| i.get("ip").or(i.get("hostname")).and_then(Value::as_str))
                .map(String::from)
                .chain(
                    o.at("/spec/externalIPs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(String::from),
                )
                .collect();
            let external = match (typ, external.is_empty()) {
                ("ExternalName", _) => s(o, "/spec/externalName").to_string(),
                ("LoadBalancer", true) => "<pending>".into(),
                (_, true) => "<none>".into(),
                (_, false) => external.join(","),
            };
            vec![
                name,
                json!(typ),
                json!(or_none(s(o, "/spec/clusterIP").to_string())),
                json!(external),
                json!(or_none(ports.join(","))),
                json!(created),
                json!(map_selector(o.at("/spec/selector"))),
            ]
        }
        ("", "configmaps") => {
            let count = ["data", "binaryData"]
                .iter()
                .filter_map(|f| o.get(*f).and_then(Value::as_object))
                .map(|m| m.len())
                .sum::<usize>();
            vec![name, json!(count), json!(created)]
        }
        ("", "secrets") => {
            let count = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, json!(s(o, "/type")), json!(count), json!(created)]
        }
        ("", "serviceaccounts") => {
            let count = o
                .get("secrets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            vec![name, json!(count), json!(created)]
        }
        ("", "endpoints") => {
            let mut eps = Vec::new();
            for subset in o
                .get("subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ports: Vec<i64> = subset
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| n(p, "/port"))
                    .collect();
                for a in subset
                    .get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if ports.is_empty() {
                        eps.push(s(a, "/ip").to_string());
                    }
                    for p in &ports {
                        eps.push(format!("{}:{p}", s(a, "/ip")));
                    }
                }
            }
            vec![name, json!(or_none(eps.join(","))), json!(created)]
        }
        ("", "events") | ("events.k8s.io", "events") => {
            let (obj_ptr, note) = if r.group.is_empty() {
                ("/involvedObject", "/message")
            } else {
                ("/regarding", "/note")
            };
            let last = [
                "/lastTimestamp",
                "/eventTime",
                "/series/lastObservedTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| o.at(p).and_then(Value::as_str))
            .map(|t| age(Some(t), now))
            .unwrap_or_else(|| "<unknown>".into());
            let kind = s(o, &format!("{obj_ptr}/kind")).to_lowercase();
            vec![
                json!(last),
                json!(s(o, "/type")),
                json!(s(o, "/reason")),
                json!(format!("{kind}/{}", s(o, &format!("{obj_ptr}/name")))),
                json!(s(o, note)),
            ]
        }
        ("apps", "deployments") => {
            let (c, i) = template_containers(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(o, "/status/readyReplicas"),
                    n(o, "/spec/replicas")
                )),
                json!(n(o, "/status/updatedReplicas")),
                json!(n(o, "/status/availableReplicas")),
                json!(created),
                json!(c),
                json!(i),
                json!(selector_string(o.at("/spec/selector"))),
            ]
        }
        ("apps", "replicasets") | ("", "replicationcontrollers") => {
            let (c, i) = template_containers(o, "/spec/template/spec/containers");
            let sel = if r.group.is_empty() {
                map_selector(o.at("/spec/selector"))
            } else {
                selector_string(o.at("/spec/selector"))
            };
            vec![
                name,
                json!(n(o, "/spec/replicas")),
                json!(n(o, "/status/replicas")),
                json!(n(o, "/status/readyReplicas")),
                json!(created),
                json!(c),
                json!(i),
                json!(sel),
            ]
        }
        ("apps", "statefulsets") => {
            let (c, i) = template_containers(o, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(o, "/status/readyReplicas"),
                    n(o, "/spec/replicas")
                )),
                json!(created),
                json!(c),
                json!(i),
            ]
        }
        ("apps", "daemonsets") => vec![
            name,
            json!(n(o, "/status/desiredNumberScheduled")),
            json!(n(o, "/status/currentNumberScheduled")),
            json!(n(o, "/status/numberReady")),
            json!(n(o, "/status/updatedNumberScheduled")),
            json!(n(o, "/status/numberAvailable")),
            json!(map_selector(o.at("/spec/template/spec/nodeSelector"))),
            json!(created),
        ],
        ("batch", "jobs") => {
            let completions = match o.at("/spec/completions").and_then(Value::as_i64) {
                Some(c) => format!("{}/{c}", n(o, "/status/succeeded")),
                None => format!(
                    "{}/1 of {}",
                    n(o, "/status/succeeded"),
                    n(o, "/spec/parallelism")
                ),
            };
            let conds = o.at("/status/conditions").and_then(Value::as_array);
            let has = |t: &str| {
                conds
                    .into_iter()
                    .flatten()
                    .any(|c| s(c, "/type") == t && s(c, "/status") == "True")
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if has("Suspended") {
                "Suspended"
            } else if has("FailureTarget") {
                "FailureTarget"
            } else if has("SuccessCriteriaMet") {
                "SuccessCriteriaMet"
            } else {
                "Running"
            };
            let start = o.at("/status/startTime").and_then(Value::as_str);
            let end = o.at("/status/completionTime").and_then(Value::as_str);
            let secs = |t: Option<&str>| {
                t.and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .map(|t| t.as_second())
            };
            let duration = match (secs(start), secs(end)) {
                (Some(a), Some(b)) => human_duration(b - a),
                (Some(a), None) => human_duration(now - a),
                _ => String::new(),
            };
            vec![
                name,
                json!(status),
                json!(completions),
                json!(duration),
                json!(created),
            ]
        }
        ("batch", "cronjobs") => vec![
            name,
            json!(s(o, "/spec/schedule")),
            json!(or_none(s(o, "/spec/timeZone").to_string())),
            json!(
                o.at("/spec/suspend")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            json!(
                o.at("/status/active")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            ),
            json!(
                match o.at("/status/lastScheduleTime").and_then(Value::as_str) {
                    Some(t) => age(Some(t), now),
                    None => "<none>".into(),
                }
            ),
            json!(created),
        ],
        ("coordination.k8s.io", "leases") => {
            vec![name, json!(s(o, "/spec/holderIdentity")), json!(created)]
        }
        ("scheduling.k8s.io", "priorityclasses") => vec![
            name,
            json!(n(o, "/value")),
            json!(
                o.get("globalDefault")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            json!(created),
        ],
        (group, plural) => crate::printers::cells(group, plural, o, created)
            .unwrap_or_else(|| crate::printers::default_cells(o)),
    }
}

/// What each row carries as `object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// A `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn row(r: &ResourceType, obj: &Value, include: IncludeObject, now: i64) -> Value {
    let mut row = json!({"cells": cells(r, obj, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => row["object"] = partial_metadata(obj),
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// A table of objects. `list_meta` becomes the table's `metadata`.
pub fn table(
    r: &ResourceType,
    objects: &[Value],
    list_meta: Value,
    include: IncludeObject,
    with_headers: bool,
) -> Value {
    let now = jiff::Timestamp::now().as_second();
    let defs: Vec<Value> = if with_headers {
        columns(r)
            .into_iter()
            .map(|(name, typ, priority, description)| {
                json!({
                    "name": name,
                    "type": typ,
                    "format": if name == "Name" { "name" } else { "" },
                    "description": description,
                    "priority": priority,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": defs,
        "rows": objects.iter().map(|o| row(r, o, include, now)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_go() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(30 * 86400), "30d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn pod_rows_show_readiness_and_status() {
        let pods = crate::resources::find("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [{"ready": true, "restartCount": 2}, {"ready": false, "restartCount": 1}]}});
        let t = table(pods, &[pod], json!({}), IncludeObject::Metadata, true);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[3], "3");
        assert_eq!(cells[6], "n1");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(
            t["columnDefinitions"].as_array().unwrap().len(),
            cells.as_array().unwrap().len()
        );
    }

    #[test]
    fn every_kind_has_as_many_cells_as_columns() {
        for r in crate::resources::RESOURCES {
            let t = table(
                r,
                &[json!({"metadata": {"name": "x"}})],
                json!({}),
                IncludeObject::None,
                true,
            );
            assert_eq!(
                t["columnDefinitions"].as_array().unwrap().len(),
                t["rows"][0]["cells"].as_array().unwrap().len(),
                "{}",
                r.plural
            );
        }
    }
}
