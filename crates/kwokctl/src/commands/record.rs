//! `snapshot export --record`: after the snapshot, one watch per exported resource appends each
//! change to the file as a `ResourcePatch` until SIGINT or SIGTERM.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::apiclient::{ApiResource, Client, form_query};
use crate::recording::{GroupVersionResource, Recorder};
use crate::watch::WatchError;

type Shared = Arc<Mutex<Recorder<BufWriter<File>>>>;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Exports the resources of `filters` to `path`, then records their changes until interrupted.
/// Returns the number of objects and of changes written.
pub fn export_and_record(
    client: &Client,
    filters: &[String],
    page: usize,
    path: &Path,
) -> anyhow::Result<(usize, usize)> {
    let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut recorder = Recorder::new(BufWriter::new(file), jiff::Timestamp::now());
    let mut watches = Vec::new();
    let mut objects = 0;
    for filter in filters {
        let Some(resource) = client.resolve(filter)? else {
            tracing::warn!(resource = %filter, "Resource not found in the cluster, skipped");
            continue;
        };
        let gvr = gvr_of(&resource);
        let (items, rv) = list(client, &resource, page)?;
        for item in &items {
            let mut saved = item.clone();
            if let Some(meta) = saved.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
            recorder.write_object(&saved)?;
            recorder.track(&gvr, item);
        }
        objects += items.len();
        watches.push((resource, gvr, rv));
    }
    tracing::info!(counter = objects, "Saved resources");
    tracing::info!("Recording");
    tracing::info!("Press Ctrl+C to stop recording resources");
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    recorder.start_now();
    let shared: Shared = Arc::new(Mutex::new(recorder));
    for (resource, gvr, rv) in watches {
        let client = client.clone();
        let shared = shared.clone();
        std::thread::spawn(move || watch_loop(&client, &resource, &gvr, rv, &shared));
    }
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Taking the lock waits for a change being written, so the file ends on a whole document.
    let recorder = shared.lock().expect("recorder");
    Ok((objects, recorder.count))
}

fn gvr_of(resource: &ApiResource) -> GroupVersionResource {
    let (group, version) = match resource.api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), resource.api_version.clone()),
    };
    GroupVersionResource {
        group,
        version,
        resource: resource.plural.clone(),
    }
}

/// Lists every object, page by page; returns them (with `apiVersion` and `kind`) and the list's
/// resource version.
fn list(
    client: &Client,
    resource: &ApiResource,
    page: usize,
) -> anyhow::Result<(Vec<Value>, String)> {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let mut pairs = vec![("limit", page.max(1).to_string())];
        if !token.is_empty() {
            pairs.push(("continue", token.clone()));
        }
        let path = format!("{}?{}", resource.collection(None), form_query(&pairs));
        let mut list = client.get_json(&path)?;
        let rv = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(array) = list.get_mut("items").and_then(Value::as_array_mut) {
            for mut item in array.drain(..) {
                if let Some(obj) = item.as_object_mut() {
                    obj.insert("apiVersion".into(), resource.api_version.clone().into());
                    obj.insert("kind".into(), resource.kind.clone().into());
                }
                items.push(item);
            }
        }
        token = list
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if token.is_empty() {
            return Ok((items, rv));
        }
    }
}

/// Watches one resource for ever, opening the next watch where the last ended; after an
/// expired resource version it lists again and records the difference.
fn watch_loop(
    client: &Client,
    resource: &ApiResource,
    gvr: &GroupVersionResource,
    mut rv: String,
    shared: &Shared,
) {
    loop {
        let mut watch = match client.watch(&resource.collection(None), &rv) {
            Ok(w) => w,
            Err(WatchError::Expired) => {
                rv = relist(client, resource, gvr, shared).unwrap_or(rv);
                continue;
            }
            Err(WatchError::Other(e)) => {
                tracing::warn!(resource = %resource.plural, err = %e, "Failed to watch");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        loop {
            let event = match watch.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(resource = %resource.plural, err = %e, "Watch ended");
                    break;
                }
            };
            let kind = event["type"].as_str().unwrap_or("").to_string();
            let object = event.get("object").cloned().unwrap_or(Value::Null);
            if kind == "ERROR" {
                if object["code"] == 410 {
                    rv = relist(client, resource, gvr, shared).unwrap_or(rv);
                }
                break;
            }
            if let Some(v) = object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
            {
                rv = v.to_string();
            }
            if kind == "BOOKMARK" {
                continue;
            }
            if let Err(e) = shared.lock().expect("recorder").event(gvr, &kind, object) {
                tracing::warn!(err = %e, "Failed to generate resource patch");
            }
        }
    }
}

/// Lists again after the watch history moved past `rv`: objects are recorded as changed, those
/// gone as deleted. Returns the new resource version.
fn relist(
    client: &Client,
    resource: &ApiResource,
    gvr: &GroupVersionResource,
    shared: &Shared,
) -> Option<String> {
    tracing::warn!(resource = %resource.plural, "Watch expired, listing again");
    let (items, rv) = match list(client, resource, 500) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(resource = %resource.plural, err = %e, "Failed to list");
            std::thread::sleep(Duration::from_secs(1));
            return None;
        }
    };
    let mut rec = shared.lock().expect("recorder");
    let mut gone = rec.tracked(gvr);
    for item in items {
        let meta = &item["metadata"];
        let id = (
            meta["namespace"].as_str().unwrap_or("").to_string(),
            meta["name"].as_str().unwrap_or("").to_string(),
        );
        gone.retain(|g| g != &id);
        let _ = rec.event(gvr, "MODIFIED", item);
    }
    for (namespace, name) in gone {
        let stub = serde_json::json!({"metadata": {"name": name, "namespace": namespace}});
        let _ = rec.event(gvr, "DELETED", stub);
    }
    Some(rv)
}
