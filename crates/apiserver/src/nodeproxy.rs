//! Requests the API server hands to a node's kubelet: `pods/log`, `exec`, `attach`,
//! `portforward` and `nodes/proxy`. The pod's node is looked up, the
//! request is checked as kube-apiserver checks it, rewritten to the kubelet's path, and sent
//! through a [`KubeletConnector`]: in-process to the simulator's kubelet-like server in the
//! embedded runtime, or over the network to the address the node advertises
//! ([`crate::kubeletclient`]).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use serde_json::Value;

use crate::errors::{ApiError, ApiResult, Cause};
use crate::objects::{JsonAt, decode};
use crate::resources;

/// Sends requests to the kubelet of a node.
#[async_trait::async_trait]
pub trait KubeletConnector: Send + Sync + 'static {
    /// Sends `req`, whose path and query are the kubelet's, to the kubelet of `node`.
    async fn send(&self, node: &Value, req: Request<Body>) -> ApiResult<Response<Body>>;
}

/// The node of a pod, for a request about one of the pod's containers.
pub(crate) struct PodOnNode {
    pub node: Value,
    pub container: String,
}

/// The container a request names, or the pod's only container, as kube-apiserver picks it.
fn container_of(pod: &Value, name: &str, requested: Option<&str>) -> ApiResult<String> {
    let names = |field: &str| -> Vec<String> {
        pod.at(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c)
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c) =>
        {
            Ok(c.to_string())
        }
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

impl crate::ApiServer {
    /// Looks up a pod, the container a request is about, and the pod's node.
    pub(crate) async fn pod_on_node(
        &self,
        namespace: &str,
        name: &str,
        container: Option<&str>,
    ) -> ApiResult<PodOnNode> {
        let pods = resources::find("", "v1", "pods").expect("built in");
        let pod = decode(&self.registry.get(pods, Some(namespace), name).await?)?;
        let container = container_of(&pod, name, container)?;
        let node_name = pod
            .at("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(format!("pod {name} does not have a host assigned"))
            })?
            .to_string();
        let nodes = resources::find("", "v1", "nodes").expect("built in");
        let node = decode(&self.registry.get(nodes, None, &node_name).await?)?;
        Ok(PodOnNode { node, container })
    }

    /// Sends a request to a node's kubelet; an answer other than success becomes the API
    /// error the client sees.
    pub(crate) async fn to_kubelet(
        &self,
        node: &Value,
        req: Request<Body>,
    ) -> ApiResult<Response<Body>> {
        let connector = self.kubelets.read().unwrap().clone();
        let resp = connector.send(node, req).await?;
        if resp.status().is_success() || resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        Err(match status {
            StatusCode::NOT_FOUND => ApiError::new(404, "NotFound", text),
            s if s.is_client_error() => ApiError::bad_request(text),
            _ => ApiError::internal(text),
        })
    }

    /// `GET pods/{name}/log`: checks the options as kube-apiserver does and streams the
    /// kubelet's answer.
    pub(crate) async fn pod_logs(
        &self,
        namespace: &str,
        name: &str,
        query: &[(String, String)],
    ) -> ApiResult<Response<Body>> {
        let get = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        check_log_options(&get)?;
        let target = self.pod_on_node(namespace, name, get("container")).await?;
        let passed: Vec<(&str, &str)> = LOG_OPTIONS
            .iter()
            .filter_map(|k| get(k).map(|v| (*k, v)))
            .collect();
        let mut uri = format!("/containerLogs/{}/{}/{}", namespace, name, target.container);
        if !passed.is_empty() {
            let encoded: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(passed)
                .finish();
            uri.push('?');
            uri.push_str(&encoded);
        }
        let req = Request::get(uri)
            .body(Body::empty())
            .map_err(ApiError::internal)?;
        let resp = self.to_kubelet(&target.node, req).await?;
        let (mut parts, body) = resp.into_parts();
        parts
            .headers
            .insert(header::CONTENT_TYPE, "text/plain".parse().expect("valid"));
        Ok(Response::from_parts(parts, body))
    }
}

impl crate::ApiServer {
    /// `nodes/{name}/proxy/{path}`: the request goes to the node's kubelet at `path` (a node
    /// name may carry a port, `n1:10250`, which the kubelet's advertised port replaces).
    pub(crate) async fn node_proxy(
        &self,
        name: &str,
        path: &str,
        raw_query: &str,
        req: Request<Body>,
    ) -> ApiResult<Response<Body>> {
        let node_name = name.split_once(':').map_or(name, |(n, _)| n);
        let nodes = resources::find("", "v1", "nodes").expect("built in");
        let node = decode(&self.registry.get(nodes, None, node_name).await?)?;
        let (mut parts, body) = req.into_parts();
        let uri = if raw_query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{raw_query}")
        };
        parts.uri = uri
            .parse()
            .map_err(|e| ApiError::bad_request(format!("invalid proxy path: {e}")))?;
        self.to_kubelet(&node, Request::from_parts(parts, body))
            .await
    }
}

/// How `exec` and `attach` options are named towards the kubelet.
const STREAM_OPTIONS: &[(&str, &str)] = &[
    ("stdin", "input"),
    ("stdout", "output"),
    ("stderr", "error"),
    ("tty", "tty"),
];

fn is_true(v: &str) -> bool {
    matches!(v, "" | "true" | "1" | "True" | "TRUE" | "t" | "T")
}

impl crate::ApiServer {
    /// `pods/exec`, `pods/attach` and `pods/portforward`: the request, upgrade headers and all,
    /// goes to the kubelet's `/exec`, `/attach` or `/portForward`, whose answer (101 Switching
    /// Protocols, or the kubelet's refusal, unchanged) the client gets.
    pub(crate) async fn pod_stream(
        &self,
        sub: &str,
        namespace: &str,
        name: &str,
        query: &[(String, String)],
        req: Request<Body>,
    ) -> ApiResult<Response<Body>> {
        let get = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let pass = |key: &'static str| {
            query
                .iter()
                .filter(move |(k, _)| k == key)
                .cloned()
                .collect::<Vec<_>>()
        };
        if sub == "portforward" {
            // Port-forward is about the pod, not one of its containers.
            let node = self.node_of(namespace, name).await?;
            let params = pass("ports");
            let path = format!("/portForward/{namespace}/{name}");
            return self.forward_stream(&node, path, &params, req).await;
        }
        let target = self.pod_on_node(namespace, name, get("container")).await?;
        self.check_running(namespace, name, sub).await?;
        let mut params = pass("command");
        for (ours, kubelets) in STREAM_OPTIONS {
            if get(ours).is_some_and(is_true) {
                params.push((kubelets.to_string(), "1".into()));
            }
        }
        let path = format!("/{sub}/{namespace}/{name}/{}", target.container);
        self.forward_stream(&target.node, path, &params, req).await
    }

    /// The node a pod is bound to.
    async fn node_of(&self, namespace: &str, name: &str) -> ApiResult<Value> {
        let pods = resources::find("", "v1", "pods").expect("built in");
        let pod = decode(&self.registry.get(pods, Some(namespace), name).await?)?;
        let node_name = pod
            .at("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(format!("pod {name} does not have a host assigned"))
            })?
            .to_string();
        let nodes = resources::find("", "v1", "nodes").expect("built in");
        decode(&self.registry.get(nodes, None, &node_name).await?)
    }

    /// kube-apiserver refuses exec and attach into a pod that has finished.
    async fn check_running(&self, namespace: &str, name: &str, sub: &str) -> ApiResult<()> {
        let pods = resources::find("", "v1", "pods").expect("built in");
        let pod = decode(&self.registry.get(pods, Some(namespace), name).await?)?;
        let phase = pod
            .at("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if phase == "Succeeded" || phase == "Failed" {
            let verb = if sub == "exec" {
                "exec into"
            } else {
                "attach to"
            };
            return Err(ApiError::bad_request(format!(
                "cannot {verb} a container in a completed pod; current phase is {phase}"
            )));
        }
        Ok(())
    }

    async fn forward_stream(
        &self,
        node: &Value,
        path: String,
        params: &[(String, String)],
        req: Request<Body>,
    ) -> ApiResult<Response<Body>> {
        let (mut parts, body) = req.into_parts();
        let uri = if params.is_empty() {
            path
        } else {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            format!("{path}?{query}")
        };
        parts.uri = uri.parse().map_err(ApiError::internal)?;
        // The kubelet's answer goes back as it is, a refusal included, as kube-apiserver's
        // upgrade-aware proxy echoes a backend that did not switch protocols: clients read
        // the reason from its body.
        let connector = self.kubelets.read().unwrap().clone();
        connector.send(node, Request::from_parts(parts, body)).await
    }
}

/// The log options passed on to the kubelet.
const LOG_OPTIONS: &[&str] = &[
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "limitBytes",
    "sinceSeconds",
    "sinceTime",
    "insecureSkipTLSVerifyBackend",
];

/// kube-apiserver's validation of `PodLogOptions`.
fn check_log_options<'q>(get: &impl Fn(&str) -> Option<&'q str>) -> ApiResult<()> {
    let number = |key: &str| -> ApiResult<Option<i64>> {
        get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "couldn't decode parameter {key:?} value {v:?}: strconv.ParseInt: parsing {v:?}: invalid syntax"
                    ))
                })
            })
            .transpose()
    };
    let mut causes = Vec::new();
    if let Some(n) = number("tailLines")?
        && n < 0
    {
        causes.push(Cause::invalid(
            "tailLines",
            &Value::from(n),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(n) = number("limitBytes")?
        && n < 1
    {
        causes.push(Cause::invalid(
            "limitBytes",
            &Value::from(n),
            "must be greater than 0",
        ));
    }
    let since_seconds = number("sinceSeconds")?;
    if let Some(n) = since_seconds
        && n < 1
    {
        causes.push(Cause::invalid(
            "sinceSeconds",
            &Value::from(n),
            "must be greater than 0",
        ));
    }
    if since_seconds.is_some() && get("sinceTime").is_some() {
        causes.push(Cause::forbidden(
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        ));
    }
    if let Some(t) = get("sinceTime")
        && t.parse::<jiff::Timestamp>().is_err()
    {
        return Err(ApiError::bad_request(format!(
            "couldn't decode parameter \"sinceTime\" value {t:?}: parsing time {t:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse"
        )));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_options("PodLogOptions", causes))
    }
}

/// The shared connector handle of a server.
pub type Connector = Arc<dyn KubeletConnector>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_container_is_the_named_one_or_the_only_one() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(container_of(&one, "p", None).unwrap(), "a");
        assert_eq!(
            container_of(&one, "p", Some("b")).unwrap_err().message,
            "container b is not valid for pod p"
        );
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        assert_eq!(
            container_of(&two, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(container_of(&two, "p", Some("i")).unwrap(), "i");
    }

    #[test]
    fn log_options_are_checked() {
        let check = |pairs: &[(&str, &str)]| {
            let owned: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            check_log_options(&|key: &str| {
                owned
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .map(|v| &*Box::leak(v.into_boxed_str()))
            })
        };
        assert!(check(&[("tailLines", "3")]).is_ok());
        assert_eq!(check(&[("tailLines", "-1")]).unwrap_err().code, 422);
        assert_eq!(
            check(&[("sinceSeconds", "5"), ("sinceTime", "2020-01-01T00:00:00Z")])
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(check(&[("limitBytes", "x")]).unwrap_err().code, 400);
    }
}
