//! Defaulting of built-in kinds, as kube-apiserver's defaulters and default admission plugins
//! fill in fields that controllers and kubectl rely on.

mod apis;

use crate::objects::JsonAt;
use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("just made an object")
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

fn image_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else { return };
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    let image = m
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    set_default(m, "imagePullPolicy", json!(image_pull_policy(&image)));
    set_default(m, "resources", json!({}));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
    // Requests default to limits when only limits are given.
    if let Some(limits) = m.get("resources").and_then(|r| r.get("limits")).cloned()
        && let Some(res) = m.get_mut("resources").and_then(Value::as_object_mut)
    {
        let requests = res.entry("requests").or_insert_with(|| json!({}));
        if let (Some(req), Some(lim)) = (requests.as_object_mut(), limits.as_object()) {
            for (k, v) in lim {
                req.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// Defaults a pod spec (also used for templates).
pub fn default_pod_spec(spec: &mut Value, admission: bool) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    set_default(m, "restartPolicy", json!("Always"));
    set_default(m, "dnsPolicy", json!("ClusterFirst"));
    set_default(m, "schedulerName", json!("default-scheduler"));
    set_default(m, "terminationGracePeriodSeconds", json!(30));
    set_default(m, "securityContext", json!({}));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(items) = m.get_mut(list).and_then(Value::as_array_mut) {
            items.iter_mut().for_each(default_container);
        }
    }
    if admission {
        set_default(m, "enableServiceLinks", json!(true));
        set_default(m, "preemptionPolicy", json!("PreemptLowerPriority"));
        // `priority` is the Priority admission's (admission/builtin.rs).
        set_default(m, "serviceAccountName", json!("default"));
        if let Some(sa) = m.get("serviceAccountName").cloned() {
            set_default(m, "serviceAccount", sa);
        }
        let tolerations = m.entry("tolerations").or_insert_with(|| json!([]));
        if tolerations.is_null() {
            *tolerations = json!([]);
        }
        if let Some(list) = tolerations.as_array_mut() {
            for key in [
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
            ] {
                let covered = list.iter().any(|t| {
                    let k = t.get("key").and_then(Value::as_str);
                    let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
                    let exists_all = t.get("operator").and_then(Value::as_str) == Some("Exists")
                        && k.is_none_or(str::is_empty);
                    (k == Some(key) || exists_all) && (effect.is_empty() || effect == "NoExecute")
                });
                if !covered {
                    list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                }
            }
        }
    }
}

fn default_template(obj: &mut Value) {
    if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
        default_pod_spec(spec, false);
    }
}

fn default_rolling(m: &mut Map<String, Value>, key: &str, with_surge: bool) {
    let strategy = m.entry(key).or_insert_with(|| json!({}));
    if let Some(s) = strategy.as_object_mut() {
        set_default(s, "type", json!("RollingUpdate"));
        if s.get("type") == Some(&json!("RollingUpdate")) {
            let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                if with_surge {
                    set_default(ru, "maxUnavailable", json!("25%"));
                    set_default(ru, "maxSurge", json!("25%"));
                } else {
                    set_default(ru, "maxUnavailable", json!(1));
                    set_default(ru, "maxSurge", json!(0));
                }
            }
        }
    }
}

/// Labels a namespace `kubernetes.io/metadata.name: <name>`, overriding any other value, as
/// kube-apiserver's defaulting and canonicalization do once the name is known (a generated name
/// only after generation). Namespace selectors of webhooks and policies rely on the label.
pub fn label_namespace_name(r: &ResourceType, obj: &mut Value) {
    if !r.group.is_empty() || r.kind != "Namespace" {
        return;
    }
    let name = match obj.at("/metadata/name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => return,
    };
    let labels = obj_mut(&mut obj["metadata"], "labels");
    labels.insert("kubernetes.io/metadata.name".into(), json!(name));
}

/// Applies defaults to a new or updated object of a built-in kind.
pub fn apply(r: &ResourceType, obj: &mut Value) {
    match (r.group, r.kind) {
        ("", "Pod") => {
            let spec = obj.get_mut("spec");
            if let Some(spec) = spec {
                default_pod_spec(spec, true);
            }
        }
        ("", "Namespace") => {
            label_namespace_name(r, obj);
            let spec = obj_mut(obj, "spec");
            set_default(spec, "finalizers", json!(["kubernetes"]));
            let status = obj_mut(obj, "status");
            set_default(status, "phase", json!("Active"));
        }
        ("", "Service") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            let external_name = spec.get("type") == Some(&json!("ExternalName"));
            if !external_name {
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(p, "protocol", json!("TCP"));
                    if let Some(port) = p.get("port").cloned() {
                        set_default(p, "targetPort", port);
                    }
                }
            }
            let status = obj_mut(obj, "status");
            set_default(status, "loadBalancer", json!({}));
        }
        ("", "Secret") => {
            let m = obj.as_object_mut().expect("objects are maps");
            set_default(m, "type", json!("Opaque"));
            // stringData is write-only: its entries are stored in data, encoded.
            if let Some(Value::Object(strings)) = m.remove("stringData") {
                use base64::Engine;
                let data = obj_mut(obj, "data");
                for (key, value) in strings {
                    let text = match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                    data.insert(key, json!(encoded));
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "volumeMode", json!("Filesystem"));
        }
        ("", "PersistentVolume") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            set_default(spec, "volumeMode", json!("Filesystem"));
        }
        ("", "ReplicationController") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            default_template(obj);
        }
        ("apps", "Deployment") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(spec, "progressDeadlineSeconds", json!(600));
            default_rolling(spec, "strategy", true);
            default_template(obj);
        }
        ("apps", "ReplicaSet") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            default_template(obj);
        }
        ("apps", "StatefulSet") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "replicas", json!(1));
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(spec, "revisionHistoryLimit", json!(10));
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            let strategy = spec.entry("updateStrategy").or_insert_with(|| json!({}));
            if let Some(s) = strategy.as_object_mut() {
                set_default(s, "type", json!("RollingUpdate"));
                if s.get("type") == Some(&json!("RollingUpdate")) {
                    let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        set_default(ru, "partition", json!(0));
                    }
                }
            }
            default_template(obj);
        }
        ("apps", "DaemonSet") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "revisionHistoryLimit", json!(10));
            default_rolling(spec, "updateStrategy", false);
            default_template(obj);
        }
        ("batch", "Job") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "parallelism", json!(1));
            set_default(spec, "backoffLimit", json!(6));
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
            if spec.get("completions").is_none() && spec.get("parallelism") == Some(&json!(1)) {
                spec.insert("completions".into(), json!(1));
            }
            default_template(obj);
        }
        ("batch", "CronJob") => {
            let spec = obj_mut(obj, "spec");
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(t) = obj.pointer_mut("/spec/jobTemplate/spec/template/spec") {
                default_pod_spec(t, false);
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            let m = obj.as_object_mut().expect("objects are maps");
            set_default(m, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("storage.k8s.io", "StorageClass") => {
            let m = obj.as_object_mut().expect("objects are maps");
            set_default(m, "reclaimPolicy", json!("Delete"));
            set_default(m, "volumeBindingMode", json!("Immediate"));
        }
        (group, kind) => apis::apply(group, kind, obj),
    }
}

/// The status a kind starts with on create (status in the request is not taken).
pub fn initial_status(r: &ResourceType, requested: Option<&Value>) -> Option<Value> {
    match (r.group, r.kind) {
        // Nodes register with their status, as kubelets do.
        ("", "Node") => requested.cloned(),
        ("", "Pod") => Some(json!({"phase": "Pending", "qosClass": "BestEffort"})),
        ("", "Namespace") => Some(json!({"phase": "Active"})),
        ("", "Service") => Some(json!({"loadBalancer": {}})),
        ("", "PersistentVolumeClaim") => Some(json!({"phase": "Pending"})),
        ("", "PersistentVolume") => Some(json!({"phase": "Pending"})),
        _ if r.has_subresource("status") => Some(json!({})),
        _ => requested.cloned(),
    }
}

/// The pod's QoS class from its containers' resources.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| pod.at(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = c.at("/resources/requests").and_then(Value::as_object);
        let lim = c.at("/resources/limits").and_then(Value::as_object);
        let has = |m: Option<&Map<String, Value>>, k: &str| m.is_some_and(|m| m.contains_key(k));
        for res in ["cpu", "memory"] {
            if has(req, res) || has(lim, res) {
                any = true;
            }
            let equal =
                has(lim, res) && req.and_then(|r| r.get(res)) == lim.and_then(|l| l.get(res));
            if !equal {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_kube_defaults() {
        let pods = crate::resources::find("", "v1", "pods").unwrap();
        let mut pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx"}, {"name": "d", "image": "nginx:1.27"}]}});
        apply(pods, &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["schedulerName"], "default-scheduler");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(
            pod["spec"]["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(pod["spec"]["enableServiceLinks"], true);
    }

    #[test]
    fn namespaces_are_labelled_with_their_name() {
        let namespaces = crate::resources::find("", "v1", "namespaces").unwrap();
        let mut ns = json!({"metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "b", "x": "y"}}});
        apply(namespaces, &mut ns);
        assert_eq!(
            ns["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "a", "x": "y"})
        );
        let mut unnamed = json!({"metadata": {"generateName": "a-"}});
        apply(namespaces, &mut unnamed);
        assert!(unnamed["metadata"].get("labels").is_none());
        let pods = crate::resources::find("", "v1", "pods").unwrap();
        let mut pod = json!({"metadata": {"name": "p"}});
        label_namespace_name(pods, &mut pod);
        assert!(pod["metadata"].get("labels").is_none());
    }

    #[test]
    fn qos_classes() {
        let be = json!({"spec": {"containers": [{"name": "c"}]}});
        assert_eq!(pod_qos_class(&be), "BestEffort");
        let g = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(pod_qos_class(&g), "Guaranteed");
        let b = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(pod_qos_class(&b), "Burstable");
    }
}
