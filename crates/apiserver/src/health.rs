//! The health endpoints `/healthz`, `/livez` and `/readyz`: their named checks, each also served
//! on its own path (`/readyz/etcd`), `?verbose` listings and `?exclude=<check>`, worded as
//! kube-apiserver's.

use std::time::Duration;

use crate::ApiServer;

/// What a check looks at.
#[derive(Clone, Copy)]
enum Probe {
    /// Always passes: the server answers.
    Ping,
    /// The store answers within [`STORE_TIMEOUT`].
    Store,
}

const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The checks of each endpoint, in kube-apiserver's order.
const CHECKS: &[(&str, &[(&str, Probe)])] = &[
    (
        "healthz",
        &[
            ("ping", Probe::Ping),
            ("log", Probe::Ping),
            ("etcd", Probe::Store),
        ],
    ),
    (
        "livez",
        &[
            ("ping", Probe::Ping),
            ("log", Probe::Ping),
            ("etcd", Probe::Store),
        ],
    ),
    (
        "readyz",
        &[
            ("ping", Probe::Ping),
            ("log", Probe::Ping),
            ("etcd", Probe::Store),
            ("etcd-readiness", Probe::Store),
            ("informer-sync", Probe::Ping),
            ("shutdown", Probe::Ping),
        ],
    ),
];

/// The answer to a health request: status code and plain-text body. `None` when the path names
/// no endpoint or check.
pub(crate) async fn answer(
    server: &ApiServer,
    segments: &[&str],
    raw_query: &str,
) -> Option<(u16, String)> {
    let (endpoint, check) = match segments {
        [endpoint] => (*endpoint, None),
        [endpoint, rest @ ..] => (*endpoint, Some(rest.join("/"))),
        [] => return None,
    };
    let (_, checks) = CHECKS.iter().find(|(name, _)| *name == endpoint)?;
    if let Some(check) = check {
        let (_, probe) = checks.iter().find(|(name, _)| *name == check)?;
        return Some(match run(server, *probe).await {
            Ok(()) => (200, "ok".into()),
            Err(why) => (500, format!("internal server error: {why}")),
        });
    }
    let mut verbose = false;
    let mut excluded = Vec::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        match key.as_ref() {
            "verbose" => verbose = true,
            "exclude" => excluded.push(value.into_owned()),
            _ => {}
        }
    }
    let mut lines = Vec::new();
    let mut failed = false;
    for (name, probe) in checks.iter() {
        if excluded.iter().any(|e| e == name) {
            lines.push(format!("[+]{name} excluded: ok"));
            continue;
        }
        match run(server, *probe).await {
            Ok(()) => lines.push(format!("[+]{name} ok")),
            Err(_) => {
                failed = true;
                lines.push(format!("[-]{name} failed: reason withheld"));
            }
        }
    }
    let known: Vec<&str> = checks.iter().map(|(name, _)| *name).collect();
    let unknown: Vec<&String> = excluded
        .iter()
        .filter(|e| !known.contains(&e.as_str()))
        .collect();
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|u| format!("{u:?}")).collect();
        lines.push(format!(
            "warn: some health checks cannot be excluded: no matches for {}",
            names.join(",")
        ));
    }
    if failed {
        lines.push(format!("{endpoint} check failed"));
        return Some((500, lines.join("\n") + "\n"));
    }
    if verbose {
        lines.push(format!("{endpoint} check passed"));
        return Some((200, lines.join("\n") + "\n"));
    }
    Some((200, "ok".into()))
}

async fn run(server: &ApiServer, probe: Probe) -> Result<(), String> {
    match probe {
        Probe::Ping => Ok(()),
        Probe::Store => {
            let store = server.registry.store().clone();
            match tokio::time::timeout(STORE_TIMEOUT, store.latest_revision()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the store did not answer in time".into()),
            }
        }
    }
}
