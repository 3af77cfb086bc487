//! Keeps the authorizer's policy current: lists each RBAC kind, then watches it, listing
//! again whenever the watch ends.

use std::sync::Arc;
use std::time::Duration;

use super::{Authorizer, Kind};
use crate::rest::{ListOptions, Registry};
use crate::{objects, resources};

fn resource(kind: Kind) -> &'static resources::ResourceType {
    resources::find("rbac.authorization.k8s.io", "v1", kind.plural()).expect("built in")
}

/// Loads every object of `kind` now; returns the revision to watch from.
pub async fn load(registry: &Registry, authorizer: &Authorizer, kind: Kind) -> Option<i64> {
    let page = registry
        .list(resource(kind), None, &ListOptions::default())
        .await
        .ok()?;
    let objects: Vec<_> = page
        .items
        .iter()
        .filter_map(|b| objects::decode(b).ok())
        .collect();
    authorizer.replace(kind, &objects);
    Some(page.resource_version)
}

/// Follows every RBAC kind for as long as the registry lives.
pub fn follow(registry: &Arc<Registry>, authorizer: &Arc<Authorizer>) {
    for kind in Kind::ALL {
        let registry = Arc::downgrade(registry);
        let authorizer = authorizer.clone();
        tokio::spawn(async move {
            loop {
                let Some(registry) = registry.upgrade() else {
                    return;
                };
                follow_once(registry, &authorizer, kind).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

async fn follow_once(registry: Arc<Registry>, authorizer: &Authorizer, kind: Kind) {
    let Some(revision) = load(&registry, authorizer, kind).await else {
        return;
    };
    let opts = ListOptions {
        resource_version: revision.to_string(),
        ..ListOptions::default()
    };
    let Ok(mut rx) = crate::watch::start(registry.clone(), resource(kind), None, opts, true).await
    else {
        return;
    };
    drop(registry);
    while let Some(ev) = rx.recv().await {
        let object = match ev.decoded {
            Some(o) => o,
            None => match objects::decode(&ev.object) {
                Ok(o) => Arc::new(o),
                Err(_) => continue,
            },
        };
        match ev.kind {
            "ADDED" | "MODIFIED" => authorizer.put(kind, &object),
            "DELETED" => authorizer.remove(kind, &object),
            "ERROR" => return,
            _ => {}
        }
    }
}
