//! The resource metrics API (`metrics.k8s.io/v1beta1`, `NodeMetrics` and `PodMetrics`), the
//! API metrics-server adds to a cluster through aggregation and that `kubectl top` and
//! horizontal pod autoscalers read. Here it is served in-process from a [`MetricsSource`] set on
//! the registry: discovery lists the group while a source is set, `get` and `list` (label and
//! `metadata.name`/`metadata.namespace` field selectors, one namespace or all) answer from the
//! source's latest sample, and every other verb is refused as metrics-server refuses it.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::errors::{ApiError, ApiResult};
use crate::objects::JsonAt;
use crate::resources::ResourceType;
use crate::rest::{ListOptions, ListPage, Registry};
use crate::selectors::{FieldSelector, LabelSelector};

/// The group of the resource metrics API.
pub const GROUP: &str = "metrics.k8s.io";

/// Where the resource metrics come from: complete `NodeMetrics` and `PodMetrics` objects
/// (`apiVersion`, `kind`, `metadata` with labels, `timestamp`, `window`, usage).
pub trait MetricsSource: Send + Sync + 'static {
    /// Every node's metrics, in name order.
    fn nodes(&self) -> Vec<Arc<Value>>;
    /// The metrics of the pods of `namespace` (of all namespaces with `None`), in namespace and
    /// name order.
    fn pods(&self, namespace: Option<&str>) -> Vec<Arc<Value>>;
}

/// The two types of the API.
pub static METRICS_TYPES: &[ResourceType] = &[
    ResourceType {
        group: GROUP,
        version: "v1beta1",
        kind: "NodeMetrics",
        plural: "nodes",
        singular: "",
        namespaced: false,
        short_names: &[],
        categories: &[],
        subresources: &[],
        generation: false,
        custom: None,
    },
    ResourceType {
        group: GROUP,
        version: "v1beta1",
        kind: "PodMetrics",
        plural: "pods",
        singular: "",
        namespaced: true,
        short_names: &[],
        categories: &[],
        subresources: &[],
        generation: false,
        custom: None,
    },
];

/// The verbs metrics-server serves.
pub const VERBS: &[&str] = &["get", "list"];

fn items(source: &dyn MetricsSource, r: &ResourceType, namespace: Option<&str>) -> Vec<Arc<Value>> {
    if r.namespaced {
        source.pods(namespace.filter(|ns| !ns.is_empty()))
    } else {
        source.nodes()
    }
}

fn name_of(v: &Value) -> &str {
    v.at("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

fn namespace_of(v: &Value) -> &str {
    v.at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether an object passes the field selector; metrics-server knows only the metadata fields.
fn fields_match(fields: &FieldSelector, r: &ResourceType, v: &Value) -> bool {
    fields.matches(r, v)
}

impl Registry {
    /// Serves the resource metrics API from `source` from now on.
    pub fn set_metrics_source(&self, source: Arc<dyn MetricsSource>) {
        *self.metrics.write().unwrap() = Some(source);
    }

    fn metrics_source(&self) -> ApiResult<Arc<dyn MetricsSource>> {
        self.metrics
            .read()
            .unwrap()
            .clone()
            .ok_or_else(ApiError::not_found_path)
    }

    /// Whether the resource metrics API is served.
    pub fn serves_metrics(&self) -> bool {
        self.metrics.read().unwrap().is_some()
    }

    /// One node's or pod's metrics.
    pub(crate) fn metrics_get(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Bytes> {
        let source = self.metrics_source()?;
        items(&*source, r, namespace)
            .into_iter()
            .find(|v| name_of(v) == name)
            .map(|v| Bytes::from(serde_json::to_vec(&*v).expect("JSON")))
            .ok_or_else(|| ApiError::not_found(r, name))
    }

    /// The metrics of the nodes or pods the selectors match.
    pub(crate) fn metrics_list(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<ListPage> {
        let source = self.metrics_source()?;
        let labels = LabelSelector::parse(&opts.label_selector).map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(&opts.field_selector).map_err(ApiError::bad_request)?;
        let items = items(&*source, r, namespace)
            .into_iter()
            .filter(|v| namespace.is_none_or(|ns| ns.is_empty() || namespace_of(v) == ns))
            .filter(|v| labels.matches_object(v) && fields_match(&fields, r, v))
            .map(|v| Bytes::from(serde_json::to_vec(&*v).expect("JSON")))
            .collect();
        Ok(ListPage {
            items,
            resource_version: 0,
            continue_token: None,
            remaining: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed;

    impl MetricsSource for Fixed {
        fn nodes(&self) -> Vec<Arc<Value>> {
            vec![Arc::new(
                json!({"metadata": {"name": "n1", "labels": {"zone": "a"}}, "usage": {"cpu": "1m"}}),
            )]
        }
        fn pods(&self, namespace: Option<&str>) -> Vec<Arc<Value>> {
            [("a", "p1", "web"), ("b", "p2", "db")]
                .into_iter()
                .filter(|(ns, _, _)| namespace.is_none_or(|n| n == *ns))
                .map(|(ns, name, app)| {
                    Arc::new(json!({"metadata": {"name": name, "namespace": ns, "labels": {"app": app}}}))
                })
                .collect()
        }
    }

    fn registry() -> Registry {
        let store: Arc<dyn store::Store> =
            store::LocalStore::open(store::Options::default()).unwrap();
        let r = Registry::new(store, Arc::new(crate::build_openapi()));
        r.set_metrics_source(Arc::new(Fixed));
        r
    }

    #[test]
    fn lists_filter_by_namespace_and_labels() {
        let reg = registry();
        let pods = &METRICS_TYPES[1];
        let all = reg
            .metrics_list(pods, None, &ListOptions::default())
            .unwrap();
        assert_eq!(all.items.len(), 2);
        let opts = ListOptions {
            label_selector: "app=db".into(),
            ..Default::default()
        };
        assert_eq!(reg.metrics_list(pods, None, &opts).unwrap().items.len(), 1);
        assert_eq!(
            reg.metrics_list(pods, Some("a"), &opts)
                .unwrap()
                .items
                .len(),
            0
        );
        assert!(reg.metrics_get(pods, Some("a"), "p1").is_ok());
        assert_eq!(
            reg.metrics_get(&METRICS_TYPES[0], None, "nope")
                .unwrap_err()
                .code,
            404
        );
    }
}
