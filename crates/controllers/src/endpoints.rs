//! The Endpoints and EndpointSlice controllers: for every Service with a selector, the addresses
//! of the pods it selects that have an IP (ready ones by their `Ready` condition, the others as
//! not ready), with the Service's ports resolved against each pod (a named `targetPort` is looked
//! up in the pod's container ports). Services without a selector are left alone, so their
//! Endpoints and EndpointSlices can be written by hand.

use client::JsonAt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use client::{Cluster, DeleteParams};
use serde_json::{Map, Value, json};

use crate::informer::{
    Cache, Event, Handler, Kind, SyncResult, WorkQueue, is_deleting, is_pod_ready, key_of, labels,
    name, namespace, now, owner_ref, phase, split_key, timestamp, uid,
};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const SLICE_MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
pub const ENDPOINTS_MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
pub const ENDPOINTS_CONTROLLER: &str = "endpoint-controller";
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Endpoints per EndpointSlice, kube-controller-manager's default.
const MAX_PER_SLICE: usize = 100;

/// The selector of a Service that gets endpoints, `None` for the ones left alone.
fn service_selector(svc: &Value) -> Option<&Map<String, Value>> {
    if svc.at("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return None;
    }
    svc.at("/spec/selector")
        .and_then(Value::as_object)
        .filter(|s| !s.is_empty())
}

fn selects(selector: &Map<String, Value>, pod: &Value) -> bool {
    let l = labels(pod);
    selector.iter().all(|(k, v)| l.get(k) == Some(v))
}

/// Maps changes of Services and pods to the Services to sync.
pub(crate) fn handler(queue: Arc<WorkQueue>) -> Handler {
    Arc::new(move |cache: &Cache, ev: &Event| match ev.kind {
        Kind::Service => {
            if let Some(o) = ev.new.as_deref().or(ev.old.as_deref()) {
                queue.add(key_of(o));
            }
        }
        Kind::Pod => {
            let (old, new) = (ev.old.as_deref(), ev.new.as_deref());
            if let (Some(o), Some(n)) = (old, new)
                && endpoint_view(o) == endpoint_view(n)
            {
                return;
            }
            let Some(any) = new.or(old) else { return };
            let mut keys = HashSet::new();
            for svc in cache.list(Kind::Service, namespace(any)) {
                if let Some(sel) = service_selector(&svc)
                    && [old, new].into_iter().flatten().any(|p| selects(sel, p))
                {
                    keys.insert(key_of(&svc));
                }
            }
            for k in keys {
                queue.add(k);
            }
        }
        Kind::Endpoints | Kind::EndpointSlice => {
            // Changed by someone else: put ours back.
            if let Some(o) = ev.old.as_deref().or(ev.new.as_deref()) {
                let svc = labels(o)
                    .get(SERVICE_NAME_LABEL)
                    .and_then(Value::as_str)
                    .unwrap_or(name(o));
                queue.add(format!("{}/{svc}", namespace(o)));
            }
        }
        _ => {}
    })
}

/// What of a pod its endpoints show.
fn endpoint_view(pod: &Value) -> (Value, Option<&Value>, Option<&Value>, bool, bool, &str) {
    (
        Value::Object(labels(pod).clone()),
        pod.at("/status/podIP"),
        pod.at("/spec/nodeName"),
        is_pod_ready(pod),
        is_deleting(pod),
        phase(pod),
    )
}

/// A Service port resolved for one pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub name: String,
    pub port: i64,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// The Service's ports as one pod serves them; a port whose named `targetPort` the pod does not
/// declare is left out.
pub fn resolve_ports(svc: &Value, pod: &Value) -> Vec<Port> {
    let mut out = Vec::new();
    for p in svc
        .at("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let protocol = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_string();
        let target = p.get("targetPort").or_else(|| p.get("port"));
        let number = match target {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => match s.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => container_port(pod, s, &protocol),
            },
            _ => None,
        };
        if let Some(port) = number {
            out.push(Port {
                name: p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                port,
                protocol,
                app_protocol: p
                    .get("appProtocol")
                    .and_then(Value::as_str)
                    .map(String::from),
            });
        }
    }
    out.sort();
    out
}

fn container_port(pod: &Value, port_name: &str, protocol: &str) -> Option<i64> {
    pod.at("/spec/containers")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("ports")?.as_array())
        .flatten()
        .find(|p| {
            p.get("name").and_then(Value::as_str) == Some(port_name)
                && p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == protocol
        })?
        .get("containerPort")?
        .as_i64()
}

fn pod_ip(pod: &Value) -> Option<&str> {
    pod.at("/status/podIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
}

fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": namespace(pod), "name": name(pod), "uid": uid(pod)})
}

/// The pods that back a Service: selected, with an IP, and not finished.
fn backing_pods(cache: &Cache, svc: &Value) -> Vec<Arc<Value>> {
    let Some(sel) = service_selector(svc) else {
        return Vec::new();
    };
    let mut pods: Vec<Arc<Value>> = cache
        .list(Kind::Pod, namespace(svc))
        .into_iter()
        .filter(|p| selects(sel, p))
        .filter(|p| pod_ip(p).is_some() && !matches!(phase(p), "Succeeded" | "Failed"))
        .collect();
    pods.sort_by(|a, b| pod_ip(a).cmp(&pod_ip(b)).then(name(a).cmp(name(b))));
    pods
}

fn publish_not_ready(svc: &Value) -> bool {
    svc.at("/spec/publishNotReadyAddresses") == Some(&json!(true))
}

fn port_json(p: &Port, with_empty_name: bool) -> Value {
    let mut v = json!({"port": p.port, "protocol": p.protocol});
    if with_empty_name || !p.name.is_empty() {
        v["name"] = json!(p.name);
    }
    if let Some(a) = &p.app_protocol {
        v["appProtocol"] = json!(a);
    }
    v
}

/// The `subsets` of a Service's Endpoints: pods grouped by the ports they resolve to.
pub fn subsets(svc: &Value, pods: &[Arc<Value>]) -> Vec<Value> {
    let mut groups: BTreeMap<Vec<Port>, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    let all_ready = publish_not_ready(svc);
    for pod in pods {
        if is_deleting(pod) && !all_ready {
            continue;
        }
        let ports = resolve_ports(svc, pod);
        let has_ports = svc
            .at("/spec/ports")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if has_ports && ports.is_empty() {
            continue;
        }
        let Some(ip) = pod_ip(pod) else { continue };
        let mut address = json!({"ip": ip, "targetRef": target_ref(pod)});
        if let Some(n) = pod.at("/spec/nodeName").filter(|n| n.is_string()) {
            address["nodeName"] = n.clone();
        }
        let group = groups.entry(ports).or_default();
        if all_ready || is_pod_ready(pod) {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| {
            let mut s = Map::new();
            if !ready.is_empty() {
                s.insert("addresses".into(), Value::Array(ready));
            }
            if !not_ready.is_empty() {
                s.insert("notReadyAddresses".into(), Value::Array(not_ready));
            }
            if !ports.is_empty() {
                s.insert(
                    "ports".into(),
                    ports.iter().map(|p| port_json(p, false)).collect(),
                );
            }
            Value::Object(s)
        })
        .collect()
}

/// The EndpointSlices a Service should have, as (ports, endpoints) pairs: pods grouped by the
/// ports they resolve to, at most 100 endpoints each; one empty slice when there are none.
pub fn slice_contents(svc: &Value, pods: &[Arc<Value>]) -> Vec<(Vec<Port>, Vec<Value>)> {
    let mut groups: BTreeMap<Vec<Port>, Vec<Value>> = BTreeMap::new();
    let all_ready = publish_not_ready(svc);
    for pod in pods {
        let ports = resolve_ports(svc, pod);
        let Some(ip) = pod_ip(pod) else { continue };
        let terminating = is_deleting(pod);
        let ready = is_pod_ready(pod);
        let mut endpoint = json!({
            "addresses": [ip],
            "conditions": {
                "ready": all_ready || (ready && !terminating),
                "serving": all_ready || ready,
                "terminating": terminating,
            },
            "targetRef": target_ref(pod),
        });
        if let Some(n) = pod.at("/spec/nodeName").filter(|n| n.is_string()) {
            endpoint["nodeName"] = n.clone();
        }
        groups.entry(ports).or_default().push(endpoint);
    }
    if groups.is_empty() {
        return vec![(Vec::new(), Vec::new())];
    }
    let mut out = Vec::new();
    for (ports, endpoints) in groups {
        for chunk in endpoints.chunks(MAX_PER_SLICE) {
            out.push((ports.clone(), chunk.to_vec()));
        }
    }
    out
}

pub(crate) struct EndpointsController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
}

impl EndpointsController {
    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, svc_name) = split_key(&key);
        let resource = Kind::Endpoints.resource();
        let existing = self.cache.get(Kind::Endpoints, ns, svc_name);
        let Some(svc) = self.cache.get(Kind::Service, ns, svc_name) else {
            // The Service is gone: so are the Endpoints the controller kept for it.
            if let Some(ep) = existing
                && labels(&ep).get(ENDPOINTS_MANAGED_BY_LABEL) == Some(&json!(ENDPOINTS_CONTROLLER))
            {
                match self
                    .cluster
                    .delete(&resource, Some(ns), svc_name, &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(None);
        };
        if service_selector(&svc).is_none() || is_deleting(&svc) {
            return Ok(None);
        }
        let pods = backing_pods(&self.cache, &svc);
        let subsets = subsets(&svc, &pods);
        let mut ep_labels = labels(&svc).clone();
        ep_labels.insert(
            ENDPOINTS_MANAGED_BY_LABEL.into(),
            json!(ENDPOINTS_CONTROLLER),
        );
        if svc.at("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
            ep_labels.insert(HEADLESS_LABEL.into(), json!(""));
        }
        let same = existing.as_ref().is_some_and(|ep| {
            ep.get("subsets").cloned().unwrap_or_else(|| json!([])) == Value::Array(subsets.clone())
                && labels(ep) == &ep_labels
        });
        if same {
            return Ok(None);
        }
        let mut ep = match &existing {
            Some(e) => (**e).clone(),
            None => json!({
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": svc_name, "namespace": ns},
            }),
        };
        ep["metadata"]["labels"] = Value::Object(ep_labels);
        ep["metadata"]["annotations"][TRIGGER_TIME] = json!(timestamp(now()));
        if subsets.is_empty() {
            if let Some(m) = ep.as_object_mut() {
                m.remove("subsets");
            }
        } else {
            ep["subsets"] = Value::Array(subsets);
        }
        let result = if existing.is_some() {
            self.cluster.update(&resource, Some(ns), &ep).await
        } else {
            self.cluster.create(&resource, Some(ns), &ep).await
        };
        match result {
            Ok(_) => Ok(None),
            // The Service went away meanwhile, or the cache is behind: look again.
            Err(e) if e.is_not_found() || e.reason == "AlreadyExists" => Err(e),
            Err(e) => Err(e),
        }
    }
}

pub(crate) struct EndpointSliceController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
}

fn slice_ports(slice: &Value) -> Vec<Port> {
    let mut ports: Vec<Port> = slice
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                port: p.get("port")?.as_i64()?,
                protocol: p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_string(),
                app_protocol: p
                    .get("appProtocol")
                    .and_then(Value::as_str)
                    .map(String::from),
            })
        })
        .collect();
    ports.sort();
    ports
}

impl EndpointSliceController {
    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, svc_name) = split_key(&key);
        let resource = Kind::EndpointSlice.resource();
        let Some(svc) = self.cache.get(Kind::Service, ns, svc_name) else {
            // The garbage collector removes the slices the Service owned.
            return Ok(None);
        };
        if service_selector(&svc).is_none() || is_deleting(&svc) {
            return Ok(None);
        }
        let mut existing: Vec<Arc<Value>> = self
            .cache
            .list(Kind::EndpointSlice, ns)
            .into_iter()
            .filter(|s| {
                let l = labels(s);
                l.get(SERVICE_NAME_LABEL) == Some(&json!(svc_name))
                    && l.get(SLICE_MANAGED_BY_LABEL) == Some(&json!(SLICE_CONTROLLER))
            })
            .collect();
        existing.sort_by(|a, b| name(a).cmp(name(b)));
        let pods = backing_pods(&self.cache, &svc);
        let wanted = slice_contents(&svc, &pods);
        let mut slice_labels = labels(&svc).clone();
        slice_labels.insert(SERVICE_NAME_LABEL.into(), json!(svc_name));
        slice_labels.insert(SLICE_MANAGED_BY_LABEL.into(), json!(SLICE_CONTROLLER));
        if svc.at("/spec/clusterIP").and_then(Value::as_str) == Some("None") {
            slice_labels.insert(HEADLESS_LABEL.into(), json!(""));
        }
        let mut unused: Vec<Option<Arc<Value>>> = existing.into_iter().map(Some).collect();
        for (ports, endpoints) in wanted {
            let ports_json: Value = if ports.is_empty() {
                Value::Null
            } else {
                ports.iter().map(|p| port_json(p, true)).collect()
            };
            let reuse = unused
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|s| slice_ports(s) == ports))
                .and_then(Option::take);
            match reuse {
                Some(slice) => {
                    let have_endpoints = slice.get("endpoints").cloned().unwrap_or(json!([]));
                    let have_ports = slice.get("ports").cloned().unwrap_or(Value::Null);
                    if have_endpoints == Value::Array(endpoints.clone())
                        && have_ports == ports_json
                        && labels(&slice) == &slice_labels
                    {
                        continue;
                    }
                    let mut next = (*slice).clone();
                    next["metadata"]["labels"] = Value::Object(slice_labels.clone());
                    next["endpoints"] = Value::Array(endpoints);
                    next["ports"] = ports_json;
                    self.cluster.update(&resource, Some(ns), &next).await?;
                }
                None => {
                    let slice = json!({
                        "apiVersion": "discovery.k8s.io/v1",
                        "kind": "EndpointSlice",
                        "metadata": {
                            "generateName": format!("{svc_name}-"),
                            "namespace": ns,
                            "labels": slice_labels,
                            "ownerReferences": [owner_ref(&svc, "v1", "Service")],
                        },
                        "addressType": "IPv4",
                        "endpoints": endpoints,
                        "ports": ports_json,
                    });
                    self.cluster.create(&resource, Some(ns), &slice).await?;
                }
            }
        }
        for slice in unused.into_iter().flatten() {
            match self
                .cluster
                .delete(&resource, Some(ns), name(&slice), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: Option<&str>, ready: bool) -> Arc<Value> {
        let mut p = json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "labels": {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if let Some(ip) = ip {
            p["status"]["podIP"] = json!(ip);
        }
        Arc::new(p)
    }

    fn service() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]},
        })
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let ports = resolve_ports(&service(), &pod("a", Some("10.0.0.1"), true));
        assert_eq!(
            ports
                .iter()
                .map(|p| (p.name.as_str(), p.port))
                .collect::<Vec<_>>(),
            [("http", 8080), ("metrics", 9090)]
        );
        let bare = json!({"spec": {"containers": [{"name": "c"}]}});
        let ports = resolve_ports(&service(), &bare);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 9090);
    }

    #[test]
    fn endpoints_split_ready_and_not_ready() {
        let pods = [
            pod("a", Some("10.0.0.1"), true),
            pod("b", Some("10.0.0.2"), false),
        ];
        let s = subsets(&service(), &pods);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0]["addresses"][0]["ip"], "10.0.0.1");
        assert_eq!(s[0]["addresses"][0]["targetRef"]["name"], "a");
        assert_eq!(s[0]["notReadyAddresses"][0]["ip"], "10.0.0.2");
        assert_eq!(s[0]["ports"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn slices_hold_conditions_and_chunk() {
        let pods: Vec<Arc<Value>> = (0..150)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    Some(&format!("10.0.{}.{}", i / 200, i % 200)),
                    i % 2 == 0,
                )
            })
            .collect();
        let slices = slice_contents(&service(), &pods);
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[0].1.len(), 100);
        assert_eq!(slices[1].1.len(), 50);
        let first = &slices[0].1[0];
        assert_eq!(first["conditions"]["ready"], true);
        assert_eq!(first["nodeName"], "node-1");
        assert_eq!(
            slice_contents(&service(), &[]),
            vec![(Vec::new(), Vec::new())]
        );
    }

    #[test]
    fn services_without_selector_are_left_alone() {
        let svc = json!({"spec": {"ports": [{"port": 80}]}});
        assert!(service_selector(&svc).is_none());
        let external = json!({"spec": {"type": "ExternalName", "selector": {"a": "b"}}});
        assert!(service_selector(&external).is_none());
    }
}
