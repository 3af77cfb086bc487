//! The ResourceQuota controller: keeps `status.hard` equal to `spec.hard` and `status.used` at
//! what the namespace holds for each listed resource: pods that have not finished (`pods`,
//! `count/pods`, `requests.*` and `limits.*` of cpu, memory and other resources, optionally
//! limited by the `Terminating`/`NotTerminating`/`BestEffort`/`NotBestEffort` scopes), services
//! (with `services.loadbalancers` and `services.nodeports`), configmaps, secrets, claims (with
//! `requests.storage`) and `count/<resource>.<group>` of any other kind. Creation is not
//! refused at admission: a quota reports usage only.

use client::JsonAt;
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, ListParams, Resource};
use serde_json::{Map, Value, json};

use crate::informer::{
    Cache, Event, Handler, Kind, SyncResult, WorkQueue, is_deleting, key_of, namespace, phase,
    split_key,
};
use crate::scheduler::model::{Resources, pod_requests};
use crate::scheduler::parse_milli;

/// How often usage is recounted even when nothing seen changed (kube-controller-manager's
/// default resync); quotas counting kinds outside the cache are recounted sooner.
const RESYNC: Duration = Duration::from_secs(300);
const LISTED_RESYNC: Duration = Duration::from_secs(30);

/// Maps changes of quotas and of counted objects to the quotas of their namespace.
pub(crate) fn handler(queue: Arc<WorkQueue>) -> Handler {
    Arc::new(move |cache: &Cache, ev: &Event| {
        let Some(obj) = ev.new.as_deref().or(ev.old.as_deref()) else {
            return;
        };
        match ev.kind {
            Kind::ResourceQuota => queue.add(key_of(obj)),
            Kind::Pod
            | Kind::Service
            | Kind::ConfigMap
            | Kind::Secret
            | Kind::PersistentVolumeClaim => {
                if let (Kind::Pod, Some(o), Some(n)) =
                    (ev.kind, ev.old.as_deref(), ev.new.as_deref())
                    && phase(o) == phase(n)
                    && is_deleting(o) == is_deleting(n)
                {
                    return;
                }
                for q in cache.list(Kind::ResourceQuota, namespace(obj)) {
                    queue.add(key_of(&q));
                }
            }
            _ => {}
        }
    })
}

/// `500m` or `2` for millicores.
pub fn format_milli(milli: i64) -> String {
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// Bytes (or other whole units) with the largest binary or decimal suffix that divides them.
pub fn format_units(value: i64) -> String {
    if value == 0 {
        return "0".into();
    }
    for (suffix, factor) in [
        ("Ei", 1i64 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if value % factor == 0 {
            return format!("{}{suffix}", value / factor);
        }
    }
    for (suffix, factor) in [
        ("E", 1_000_000_000_000_000_000i64),
        ("P", 1_000_000_000_000_000),
        ("T", 1_000_000_000_000),
        ("G", 1_000_000_000),
        ("M", 1_000_000),
        ("k", 1_000),
    ] {
        if value % factor == 0 {
            return format!("{}{suffix}", value / factor);
        }
    }
    value.to_string()
}

fn pod_limits(spec: &Value) -> Resources {
    let list = |field: &str| -> Vec<Resources> {
        spec.get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| Resources::parse(c.at("/resources/limits")))
            .collect()
    };
    let mut sum = Resources::default();
    for r in list("containers") {
        sum.add(&r, 1);
    }
    for init in list("initContainers") {
        for name in ["cpu", "memory"]
            .into_iter()
            .map(String::from)
            .chain(init.other.iter().map(|(k, _)| k.clone()))
        {
            if init.get(&name) > sum.get(&name) {
                sum.set(&name, init.get(&name));
            }
        }
    }
    sum
}

fn best_effort(spec: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|field| {
        spec.get(*field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|c| {
                ["requests", "limits"].iter().all(|k| {
                    c.at(&format!("/resources/{k}"))
                        .and_then(Value::as_object)
                        .is_none_or(|m| m.is_empty())
                })
            })
    })
}

fn in_scopes(pod: &Value, scopes: &[&str]) -> bool {
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    scopes.iter().all(|scope| match *scope {
        "Terminating" => spec
            .get("activeDeadlineSeconds")
            .is_some_and(|v| !v.is_null()),
        "NotTerminating" => spec.get("activeDeadlineSeconds").is_none_or(Value::is_null),
        "BestEffort" => best_effort(spec),
        "NotBestEffort" => !best_effort(spec),
        _ => true,
    })
}

/// What the pods use of one quota resource, `None` for resources pods do not count towards.
pub fn pod_usage(resource: &str, pods: &[&Value]) -> Option<String> {
    let counted = || {
        pods.iter()
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
    };
    if resource == "pods" || resource == "count/pods" {
        return Some(counted().count().to_string());
    }
    let (limits, name) = if let Some(n) = resource.strip_prefix("limits.") {
        (true, n)
    } else if let Some(n) = resource.strip_prefix("requests.") {
        (false, n)
    } else if matches!(resource, "cpu" | "memory" | "ephemeral-storage") {
        (false, resource)
    } else {
        return None;
    };
    if name == "storage" {
        return None;
    }
    let total: i64 = counted()
        .map(|p| {
            let spec = p.get("spec").unwrap_or(&Value::Null);
            if limits {
                pod_limits(spec).get(name)
            } else {
                pod_requests(spec).get(name)
            }
        })
        .sum();
    Some(if name == "cpu" {
        format_milli(total)
    } else {
        format_units(total)
    })
}

pub(crate) struct ResourceQuotaController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
}

/// The kind a `count/<plural>[.<group>]` name refers to.
fn counted_resource(name: &str) -> Option<Resource> {
    let (plural, group) = name.split_once('.').unwrap_or((name, ""));
    if plural.is_empty() {
        return None;
    }
    let version = match group {
        "autoscaling" => "v2",
        _ => "v1",
    };
    Some(Resource::new(group, version, plural, "", true))
}

impl ResourceQuotaController {
    async fn count(&self, ns: &str, plural_group: &str) -> client::Result<Option<i64>> {
        let cached = match plural_group {
            "services" => Some(Kind::Service),
            "configmaps" => Some(Kind::ConfigMap),
            "secrets" => Some(Kind::Secret),
            "persistentvolumeclaims" => Some(Kind::PersistentVolumeClaim),
            "resourcequotas" => Some(Kind::ResourceQuota),
            _ => None,
        };
        if let Some(kind) = cached {
            return Ok(Some(self.cache.list(kind, ns).len() as i64));
        }
        let Some(r) = counted_resource(plural_group) else {
            return Ok(None);
        };
        match client::list_all(&*self.cluster, &r, Some(ns), &ListParams::default()).await {
            Ok(list) => Ok(Some(list.items.len() as i64)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, quota_name) = split_key(&key);
        let Some(quota) = self.cache.get(Kind::ResourceQuota, ns, quota_name) else {
            return Ok(None);
        };
        let hard = quota
            .at("/spec/hard")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let scopes: Vec<&str> = quota
            .at("/spec/scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let pods = self.cache.list(Kind::Pod, ns);
        let pods: Vec<&Value> = pods
            .iter()
            .map(|p| &**p)
            .filter(|p| in_scopes(p, &scopes))
            .collect();
        let mut used = Map::new();
        let mut listed = false;
        for resource in hard.keys() {
            let value = if let Some(v) = pod_usage(resource, &pods) {
                v
            } else if !scopes.is_empty() {
                "0".to_string()
            } else {
                match resource.as_str() {
                    "services.loadbalancers" | "services.nodeports" => {
                        let kind = if resource == "services.loadbalancers" {
                            "LoadBalancer"
                        } else {
                            "NodePort"
                        };
                        self.cache
                            .list(Kind::Service, ns)
                            .iter()
                            .filter(|s| {
                                let t = s.at("/spec/type").and_then(Value::as_str);
                                t == Some(kind) || (kind == "NodePort" && t == Some("LoadBalancer"))
                            })
                            .count()
                            .to_string()
                    }
                    "requests.storage" => format_units(
                        self.cache
                            .list(Kind::PersistentVolumeClaim, ns)
                            .iter()
                            .filter_map(|c| {
                                c.at("/spec/resources/requests/storage")
                                    .and_then(Value::as_str)
                                    .and_then(parse_milli)
                            })
                            .map(|m| ((m + 999) / 1000) as i64)
                            .sum(),
                    ),
                    other => {
                        let plural = other.strip_prefix("count/").unwrap_or(other);
                        if other.starts_with("count/")
                            && !matches!(
                                plural,
                                "services"
                                    | "configmaps"
                                    | "secrets"
                                    | "persistentvolumeclaims"
                                    | "resourcequotas"
                            )
                        {
                            listed = true;
                        }
                        self.count(ns, plural)
                            .await?
                            .map_or_else(|| "0".to_string(), |n| n.to_string())
                    }
                }
            };
            used.insert(resource.clone(), json!(value));
        }
        let status = json!({"hard": hard, "used": used});
        if quota.get("status") != Some(&status) {
            let mut next = (*quota).clone();
            next["status"] = status;
            match self
                .cluster
                .update_status(&Kind::ResourceQuota.resource(), Some(ns), &next)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(if listed { LISTED_RESYNC } else { RESYNC }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_format_as_kubernetes_writes_them() {
        assert_eq!(format_milli(1500), "1500m");
        assert_eq!(format_milli(2000), "2");
        assert_eq!(format_milli(0), "0");
        assert_eq!(format_units(128 << 20), "128Mi");
        assert_eq!(format_units(3 << 30), "3Gi");
        assert_eq!(format_units(2_000_000), "2M");
        assert_eq!(format_units(1500), "1500");
    }

    #[test]
    fn pods_count_towards_requests_limits_and_numbers() {
        let pod = |cpu: &str, mem: &str, phase: &str| {
            json!({"spec": {"containers": [{"name": "c", "resources": {
                "requests": {"cpu": cpu, "memory": mem},
                "limits": {"cpu": "1", "memory": "1Gi"}}}]},
                "status": {"phase": phase}})
        };
        let pods = [
            pod("250m", "64Mi", "Running"),
            pod("500m", "64Mi", "Pending"),
            pod("1", "1Gi", "Succeeded"),
        ];
        let refs: Vec<&Value> = pods.iter().collect();
        assert_eq!(pod_usage("pods", &refs).unwrap(), "2");
        assert_eq!(pod_usage("count/pods", &refs).unwrap(), "2");
        assert_eq!(pod_usage("requests.cpu", &refs).unwrap(), "750m");
        assert_eq!(pod_usage("cpu", &refs).unwrap(), "750m");
        assert_eq!(pod_usage("requests.memory", &refs).unwrap(), "128Mi");
        assert_eq!(pod_usage("limits.cpu", &refs).unwrap(), "2");
        assert_eq!(pod_usage("limits.memory", &refs).unwrap(), "2Gi");
        assert_eq!(pod_usage("services", &refs), None);
        assert_eq!(pod_usage("requests.storage", &refs), None);
    }

    #[test]
    fn scopes_filter_pods() {
        let besteffort = json!({"spec": {"containers": [{"name": "c"}]}});
        let terminating = json!({"spec": {"activeDeadlineSeconds": 10,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
        assert!(in_scopes(&besteffort, &["BestEffort", "NotTerminating"]));
        assert!(!in_scopes(&besteffort, &["NotBestEffort"]));
        assert!(in_scopes(&terminating, &["Terminating", "NotBestEffort"]));
        assert!(!in_scopes(&terminating, &["NotTerminating"]));
    }
}
