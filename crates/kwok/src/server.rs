//! The simulator's small HTTP server (`--server-address`): `/healthz`, `/readyz`, `/livez` and
//! `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::engine::Metrics;

/// Serves until the process ends.
pub async fn serve(address: &str, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let addr: SocketAddr = address
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid --server-address {address:?}: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("listen on {addr}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "serving /healthz and /metrics");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { m.render() }
            }),
        );
    axum::serve(listener, app).await?;
    Ok(())
}
