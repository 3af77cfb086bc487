//! In-process followers of one resource type: every object now and every later add or
//! change is handed to a callback, listing again whenever the watch ends. The server's own
//! controllers (token Secrets, certificate signing) run on it.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;

use crate::resources::ResourceType;
use crate::rest::ListOptions;
use crate::{ApiServer, objects};

/// Follows `r` for as long as the server lives.
pub(crate) fn follow_objects<F, Fut>(
    server: &Arc<ApiServer>,
    r: &'static ResourceType,
    on_object: F,
) where
    F: Fn(Arc<ApiServer>, Arc<Value>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(server);
    tokio::spawn(async move {
        while weak.strong_count() > 0 {
            follow_once(&weak, r, &on_object).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn follow_once<F, Fut>(weak: &Weak<ApiServer>, r: &'static ResourceType, on_object: &F)
where
    F: Fn(Arc<ApiServer>, Arc<Value>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(server) = weak.upgrade() else { return };
    let Ok(page) = server.registry.list(r, None, &ListOptions::default()).await else {
        return;
    };
    for item in &page.items {
        if let Ok(object) = objects::decode(item) {
            on_object(server.clone(), Arc::new(object)).await;
        }
    }
    let opts = ListOptions {
        resource_version: page.resource_version.to_string(),
        ..ListOptions::default()
    };
    let Ok(mut rx) = crate::watch::start(server.registry.clone(), r, None, opts, true).await else {
        return;
    };
    drop(server);
    while let Some(ev) = rx.recv().await {
        if !matches!(ev.kind, "ADDED" | "MODIFIED") {
            continue;
        }
        let Some(server) = weak.upgrade() else { return };
        let object = match ev.decoded {
            Some(o) => o,
            None => match objects::decode(&ev.object) {
                Ok(o) => Arc::new(o),
                Err(_) => continue,
            },
        };
        on_object(server, object).await;
    }
}
