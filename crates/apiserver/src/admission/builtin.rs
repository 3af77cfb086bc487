//! Built-in mutating admission that needs other objects: `Priority` (a pod's
//! `priorityClassName` resolved to its value and preemption policy, the global default class
//! for pods without one), `DefaultStorageClass` (claims without a class get the default one)
//! and `DefaultIngressClass` (likewise for ingresses), worded as kube-apiserver's plugins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects::{self, JsonAt};
use crate::resources::{self, ResourceType};
use crate::rest::{ListOptions, Registry};

use super::plugins;

const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const DEFAULT_INGRESS_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The newest object of `objects` annotated `annotation: "true"`.
fn default_of<'a>(objects: &'a [Value], annotation: &str) -> Option<&'a Value> {
    newest(
        objects
            .iter()
            .filter(|c| {
                let annotations = c.at("/metadata/annotations");
                annotations.and_then(|a| a.get(annotation)) == Some(&json!("true"))
            })
            .collect(),
    )
}

/// How long a listed kind is trusted when nothing was written through this server; writes of
/// another server sharing the store are seen within it, as kube-apiserver's informers lag.
const FRESH: Duration = Duration::from_secs(1);

/// When a kind was listed, and its objects.
type Listed = (Instant, Arc<Vec<Value>>);

/// The PriorityClasses and StorageClasses admission reads, kept between requests so that a
/// pod create does not list them.
#[derive(Default)]
pub(crate) struct Cache {
    kinds: Mutex<HashMap<&'static str, Listed>>,
}

impl Cache {
    /// Forgets `plural` after a write to it.
    pub(crate) fn invalidate(&self, plural: &str) {
        self.kinds.lock().unwrap().remove(plural);
    }
}

async fn list(
    registry: &Registry,
    group: &str,
    plural: &'static str,
) -> ApiResult<Arc<Vec<Value>>> {
    if let Some((at, objects)) = registry.admission_cache.kinds.lock().unwrap().get(plural)
        && at.elapsed() < FRESH
    {
        return Ok(objects.clone());
    }
    let r = resources::find(group, "v1", plural).expect("built in");
    let page = registry.list(r, None, &ListOptions::default()).await?;
    let objects = Arc::new(
        page.items
            .iter()
            .map(|b| objects::decode(b))
            .collect::<ApiResult<Vec<_>>>()?,
    );
    registry
        .admission_cache
        .kinds
        .lock()
        .unwrap()
        .insert(plural, (Instant::now(), objects.clone()));
    Ok(objects)
}

/// Of several marked default, the newest (then the first by name), as kube-apiserver picks.
fn newest(mut candidates: Vec<&Value>) -> Option<&Value> {
    candidates.sort_by(|a, b| {
        let created = |o: &Value| {
            o.at("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let name = |o: &Value| {
            o.at("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        created(b).cmp(&created(a)).then(name(a).cmp(&name(b)))
    });
    candidates.into_iter().next()
}

/// Runs the built-in mutating admission of a created object.
pub(crate) async fn admit_create(
    registry: &Registry,
    r: &ResourceType,
    obj: &mut Value,
) -> ApiResult<()> {
    let on = |plugin| registry.admission.plugins.on(plugin);
    match (r.group, r.plural) {
        ("", "pods") if on(plugins::PRIORITY) => priority(registry, obj).await,
        ("", "persistentvolumeclaims") if on(plugins::DEFAULT_STORAGE_CLASS) => {
            default_storage_class(registry, obj).await
        }
        ("networking.k8s.io", "ingresses") if on(plugins::DEFAULT_INGRESS_CLASS) => {
            default_ingress_class(registry, obj).await
        }
        _ => Ok(()),
    }
}

async fn priority(registry: &Registry, pod: &mut Value) -> ApiResult<()> {
    let name = pod
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let requested = pod
        .at("/spec/priorityClassName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(String::from);
    let classes = list(registry, "scheduling.k8s.io", "priorityclasses").await?;
    let class = match &requested {
        Some(wanted) => Some(
            classes
                .iter()
                .find(|c| c.at("/metadata/name").and_then(Value::as_str) == Some(wanted))
                .cloned()
                .ok_or_else(|| {
                    ApiError::forbidden(format!(
                        "pods {name:?} is forbidden: no PriorityClass with name {wanted} was found"
                    ))
                })?,
        ),
        None => newest(
            classes
                .iter()
                .filter(|c| c.get("globalDefault") == Some(&json!(true)))
                .collect(),
        )
        .cloned(),
    };
    let value = class
        .as_ref()
        .and_then(|c| c.get("value"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let spec = pod.get_mut("spec").and_then(Value::as_object_mut);
    let Some(spec) = spec else { return Ok(()) };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != value
    {
        return Err(ApiError::forbidden(format!(
            "pods {name:?} is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
        )));
    }
    spec.insert("priority".into(), json!(value));
    if let Some(class) = &class {
        if requested.is_none() {
            spec.insert(
                "priorityClassName".into(),
                class["metadata"]["name"].clone(),
            );
        }
        let policy = class
            .get("preemptionPolicy")
            .cloned()
            .unwrap_or(json!("PreemptLowerPriority"));
        spec.insert("preemptionPolicy".into(), policy);
    }
    Ok(())
}

async fn default_storage_class(registry: &Registry, claim: &mut Value) -> ApiResult<()> {
    if claim
        .at("/spec/storageClassName")
        .is_some_and(|c| !c.is_null())
    {
        return Ok(());
    }
    let classes = list(registry, "storage.k8s.io", "storageclasses").await?;
    let default = default_of(&classes, DEFAULT_CLASS_ANNOTATION);
    if let (Some(class), Some(spec)) = (
        default,
        claim.get_mut("spec").and_then(Value::as_object_mut),
    ) {
        spec.insert("storageClassName".into(), class["metadata"]["name"].clone());
    }
    Ok(())
}

async fn default_ingress_class(registry: &Registry, ingress: &mut Value) -> ApiResult<()> {
    let annotated = ingress
        .at("/metadata/annotations")
        .and_then(|a| a.get("kubernetes.io/ingress.class"))
        .is_some();
    if ingress
        .at("/spec/ingressClassName")
        .is_some_and(|c| !c.is_null())
        || annotated
    {
        return Ok(());
    }
    let classes = list(registry, "networking.k8s.io", "ingressclasses").await?;
    let default = default_of(&classes, DEFAULT_INGRESS_CLASS_ANNOTATION);
    if let (Some(class), Some(spec)) = (
        default,
        ingress.get_mut("spec").and_then(Value::as_object_mut),
    ) {
        spec.insert("ingressClassName".into(), class["metadata"]["name"].clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_default_wins() {
        let a = json!({"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"}});
        let b = json!({"metadata": {"name": "b", "creationTimestamp": "2026-01-02T00:00:00Z"}});
        assert_eq!(newest(vec![&a, &b]).unwrap()["metadata"]["name"], "b");
        assert!(newest(vec![]).is_none());
    }
}
