//! The kubelet-like HTTP server of the simulator (`--server-address`), as upstream's: container
//! logs (`/containerLogs/{ns}/{pod}/{container}`), exec and attach (`/exec/...`, `/attach/...`,
//! [`remote`]), port-forward (`/portForward/{ns}/{pod}`, [`forward`]) over the streaming
//! protocols of the `streams` crate, health (`/healthz`, `/readyz`, `/livez`) and the
//! simulator's own `/metrics`. What a pod answers comes from the simulation objects
//! ([`crate::simkinds`]). The API server reaches this server through the node's address and
//! `daemonEndpoints.kubeletEndpoint.Port`, or in-process through [`Kubelet::router`].

pub mod forward;
pub mod logs;
pub mod process;
pub mod remote;

/// The kubelet surface in the same process as the API server (the embedded runtime): requests
/// for any node's kubelet are answered by this process's server without a network hop, which
/// also lets upgraded connections (exec, attach, port-forward) pass straight through.
pub struct InProcess {
    router: Router,
}

impl InProcess {
    pub fn new(kubelet: &Arc<Kubelet>) -> Self {
        Self {
            router: kubelet.router(),
        }
    }
}

#[async_trait::async_trait]
impl apiserver::nodeproxy::KubeletConnector for InProcess {
    async fn send(
        &self,
        _node: &serde_json::Value,
        req: axum::http::Request<Body>,
    ) -> apiserver::ApiResult<Response> {
        use tower::ServiceExt;
        Ok(self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {}))
    }
}

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use client::{Cluster, Resource};

use crate::engine::Metrics;
use crate::simkinds::{Missing, Simulations};

/// What the server serves from.
pub struct Kubelet {
    pub simulations: Arc<Simulations>,
    pub cluster: Arc<dyn Cluster>,
    pub metrics: Arc<Metrics>,
    /// Simulated usage, the Metric endpoints and `/discovery/prometheus`, once enabled.
    usage: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

/// An error as kubelet answers it: a status and a plain message.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

/// A streaming endpoint: clients upgrade with GET (WebSocket) or POST (SPDY).
fn stream<H, T>(handler: H) -> MethodRouter<Arc<Kubelet>>
where
    H: axum::handler::Handler<T, Arc<Kubelet>>,
    T: 'static,
{
    get(handler.clone()).post(handler)
}

/// The client's connection once it has switched protocols.
pub type Switched = hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>;

/// Answers an upgrade request for `service`: the negotiated `101 Switching Protocols`, then
/// `serve` runs on the switched connection; or the refusal a kubelet would give.
fn upgrade<F, Fut>(mut req: axum::extract::Request, service: streams::Service, serve: F) -> Response
where
    F: FnOnce(Switched, streams::Transport) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let handshake = match streams::negotiate(req.headers(), service) {
        Ok(h) => h,
        Err(refusal) => return Refusal(refusal.status, refusal.message).into_response(),
    };
    let switching = hyper::upgrade::on(&mut req);
    let transport = handshake.transport;
    tokio::spawn(async move {
        match switching.await {
            Ok(io) => serve(hyper_util::rt::TokioIo::new(io), transport).await,
            Err(e) => tracing::debug!(error = %e, "the client did not switch protocols"),
        }
    });
    let (parts, ()) = handshake.response.into_parts();
    Response::from_parts(parts, Body::empty())
}

fn query_pairs(raw: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

impl Kubelet {
    /// The server of a running simulator: the simulation objects of its options, and those
    /// in the cluster as they come and go.
    pub fn start(cluster: Arc<dyn Cluster>, sim: &crate::Simulator) -> Arc<Self> {
        let simulations = Arc::new(Simulations::default());
        for doc in &sim.env.opts.simulations {
            if let Err(e) = simulations.put(doc) {
                tracing::error!("invalid simulation object in the config, skipped: {e}");
            }
        }
        simulations.follow(cluster.clone());
        Arc::new(Kubelet {
            simulations,
            cluster,
            metrics: sim.metrics.clone(),
            usage: std::sync::OnceLock::new(),
        })
    }

    /// Serves the Metric endpoints and `/discovery/prometheus` from now on.
    pub fn enable_metrics(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.usage.set(metrics);
    }

    /// The routes, for serving on a port or calling in-process.
    pub fn router(self: &Arc<Self>) -> Router {
        let metrics = self.metrics.clone();
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ok" }))
            .route("/livez", get(|| async { "ok" }))
            .route(
                "/metrics",
                get(move || {
                    let m = metrics.clone();
                    async move { m.render() }
                }),
            )
            .route(
                "/containerLogs/{namespace}/{pod}/{container}",
                get(container_logs),
            )
            .route("/exec/{namespace}/{pod}/{container}", stream(remote::exec))
            .route(
                "/exec/{namespace}/{pod}/{uid}/{container}",
                stream(remote::exec),
            )
            .route(
                "/attach/{namespace}/{pod}/{container}",
                stream(remote::attach),
            )
            .route(
                "/attach/{namespace}/{pod}/{uid}/{container}",
                stream(remote::attach),
            )
            .route(
                "/portForward/{namespace}/{pod}",
                stream(forward::port_forward),
            )
            .route(
                "/portForward/{namespace}/{pod}/{uid}",
                stream(forward::port_forward),
            )
            .route("/discovery/prometheus", get(prometheus_discovery))
            .fallback(metric_endpoint)
            .with_state(self.clone())
    }

    /// Whether the pod still exists and has not been replaced.
    async fn pod_exists(&self, namespace: &str, pod: &str) -> bool {
        match self
            .cluster
            .get(&Resource::pods(), Some(namespace), pod)
            .await
        {
            Ok(_) => true,
            Err(e) => !e.is_not_found(),
        }
    }

    /// Returns once the pod is gone (polled every second).
    async fn until_gone(&self, namespace: &str, pod: &str) {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if !self.pod_exists(namespace, pod).await {
                return;
            }
        }
    }

    /// Serves on `address` until the process ends.
    pub async fn serve(self: Arc<Self>, address: &str) -> anyhow::Result<()> {
        let addr: SocketAddr = address
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid --server-address {address:?}: {e}"))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("listen on {addr}: {e}"))?;
        tracing::info!(address = %listener.local_addr()?, "serving the kubelet endpoints");
        axum::serve(listener, self.router()).await?;
        Ok(())
    }
}

/// A Metric object's endpoint, in the Prometheus text format.
async fn metric_endpoint(State(kubelet): State<Arc<Kubelet>>, uri: axum::http::Uri) -> Response {
    let path = uri.path().to_string();
    let Some(metrics) = kubelet.usage.get().cloned() else {
        return Refusal(StatusCode::NOT_FOUND, "404 page not found".into()).into_response();
    };
    let scraped = tokio::task::spawn_blocking(move || metrics.scrape(&path))
        .await
        .ok()
        .flatten();
    match scraped {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => Refusal(StatusCode::NOT_FOUND, "404 page not found".into()).into_response(),
    }
}

/// Prometheus `http_sd` targets: every Metric path, per node where the path names one.
async fn prometheus_discovery(
    State(kubelet): State<Arc<Kubelet>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let targets = kubelet
        .usage
        .get()
        .map(|m| m.discovery(&host))
        .unwrap_or_else(|| serde_json::json!([]));
    axum::Json(targets).into_response()
}

async fn container_logs(
    State(kubelet): State<Arc<Kubelet>>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, Refusal> {
    let opts = logs::LogOptions::from_query(&query_pairs(query)).map_err(|_| {
        Refusal(
            StatusCode::BAD_REQUEST,
            r#"{"message": "Unable to decode query."}"#.into(),
        )
    })?;
    let rule = kubelet
        .simulations
        .logs
        .find(&namespace, &pod, &container)
        .map_err(|missing| {
            let message = match missing {
                Missing::Container => format!(
                    "log target not found for container {container:?} in pod \"{namespace}/{pod}\""
                ),
                Missing::Pod => format!(
                    "no logs found for container {container:?} in pod \"{namespace}/{pod}\""
                ),
            };
            Refusal(StatusCode::BAD_REQUEST, message)
        })?;
    let file = if opts.previous {
        rule.previous_logs_file
            .clone()
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                Refusal(
                    StatusCode::BAD_REQUEST,
                    format!("previous terminated container {container:?} in pod {pod:?} not found"),
                )
            })?
    } else {
        rule.logs_file
            .clone()
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                Refusal(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "no logs file for container {container:?} in pod \"{namespace}/{pod}\""
                    ),
                )
            })?
    };
    if let Err(e) = tokio::fs::metadata(&file).await {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("failed to open log file {file:?}: {e}"),
        ));
    }
    // A Logs entry follows appends only when it says so, as the simulated file is otherwise
    // complete.
    let mut opts = opts;
    opts.follow &= rule.follow.unwrap_or(false);
    let alive = {
        let kubelet = kubelet.clone();
        move || {
            let kubelet = kubelet.clone();
            let (namespace, pod) = (namespace.clone(), pod.clone());
            async move { kubelet.pod_exists(&namespace, &pod).await }
        }
    };
    let body = Body::from_stream(logs::stream(file.into(), opts, alive));
    Ok(([(header::CONTENT_TYPE, "text/plain")], body).into_response())
}
