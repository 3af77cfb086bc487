//! `kwokctl scale <kind> [name] --replicas N`: creates or deletes objects named
//! `<name>-000000...` so that exactly N carry the scale label.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use crate::apiclient::Client;
use crate::cli::ScaleArgs;
use crate::context::Context;
use crate::duration;
use crate::progress::Progress;
use crate::scale::{self, Param, Resource, SCALE_LABEL};

/// Concurrent requests while scaling.
pub const WORKERS: usize = 24;

pub fn scale(ctx: &Context, args: &ScaleArgs) -> anyhow::Result<()> {
    let cluster = super::load_existing(ctx)?;
    let params = args
        .param
        .iter()
        .map(|p| Param::parse(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut resource = find_resource(ctx, &cluster.other_documents, &args.kind)?;
    let object_params = resource.apply_params(&params)?;
    let scale_name = args.name.clone().unwrap_or_else(|| resource.name.clone());
    crate::paths::validate_cluster_name(&scale_name)
        .map_err(|_| anyhow!("invalid name {scale_name:?}"))?;

    // Render the first object to learn its kind and where it lives.
    let probe = resource.render(
        &scale::serial_name(&scale_name, 0, args.serial_length),
        args.namespace.as_deref().unwrap_or("default"),
        0,
    )?;
    let api_version = probe
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the {:?} template has no apiVersion", resource.name))?
        .to_string();
    let kind = probe
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the {:?} template has no kind", resource.name))?
        .to_string();

    if ctx.dry_run {
        crate::dryrun::say(format!(
            "# Scale {kind} {scale_name} to {} replicas",
            args.replicas
        ));
        return Ok(());
    }

    let client = Client::from_kubeconfig(&cluster.paths.kubeconfig())?;
    let api = client.resource_for_kind(&api_version, &kind)?;
    let namespace = if api.namespaced {
        Some(
            args.namespace
                .clone()
                .or_else(|| {
                    probe
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "default".to_string()),
        )
    } else {
        None
    };
    let ns = namespace.as_deref();

    let started = Instant::now();
    let selector = format!("{SCALE_LABEL}={scale_name}");
    let existing = client.list_all_metadata(&api, ns, Some(&selector), 500)?;
    let current: Vec<(usize, String, String)> = existing
        .iter()
        .filter(|o| o.pointer("/metadata/deletionTimestamp").is_none())
        .filter_map(|o| {
            let name = o.pointer("/metadata/name")?.as_str()?.to_string();
            let created = o
                .pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let index = scale::parse_serial(&scale_name, &name).unwrap_or(usize::MAX);
            Some((index, created, name))
        })
        .collect();
    let want = usize::try_from(args.replicas).context("--replicas")?;
    let have = current.len();
    tracing::debug!(kind = %kind, have, want, "Scaling");

    if want > have {
        // Names of terminating objects are still taken.
        let used: BTreeSet<usize> = existing
            .iter()
            .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
            .filter_map(|n| scale::parse_serial(&scale_name, n))
            .collect();
        let indices: Vec<usize> = (0..)
            .filter(|i| !used.contains(i))
            .take(want - have)
            .collect();
        // Objects are rendered as they are sent, so that a million of them are never held at
        // once; the first is rendered before anything is sent, so a template or parameter
        // that cannot render at all fails the command with nothing created (one that fails
        // for some indices only is reported with the objects it could not create).
        let render = |i: usize| -> anyhow::Result<Value> {
            let name = scale::serial_name(&scale_name, i, args.serial_length);
            let obj = resource
                .render(&name, ns.unwrap_or(""), i)
                .and_then(|obj| scale::finish_object(obj, &scale_name, &name, ns, &object_params))
                .with_context(|| format!("render {name}"))?;
            Ok(obj)
        };
        if let Some(&first) = indices.first() {
            render(first)?;
        }
        let path = api.collection(ns);
        let progress = Progress::new("Creating", indices.len());
        let results = crate::apiclient::parallel(
            &indices,
            WORKERS,
            |&i| -> anyhow::Result<()> {
                let obj = render(i)?;
                let resp = client.request("POST", &path, Some(&obj))?;
                if resp.ok() || resp.status == 409 {
                    Ok(())
                } else {
                    Err(anyhow!(
                        "create {}: {}",
                        obj.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or(""),
                        resp.message()
                    ))
                }
            },
            || progress.tick(),
        );
        progress.finish();
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(Result::err)
            .map(|e| format!("{e:#}"))
            .collect();
        let created = indices.len() - errors.len();
        tracing::info!(counter = created, kind = %kind, elapsed = %duration::human(started.elapsed()), "Created resources");
        if !errors.is_empty() {
            bail!(
                "{} of {} objects could not be created: {}",
                errors.len(),
                indices.len(),
                errors[0]
            );
        }
    } else if want < have {
        let victims = scale::surplus(current, want);
        let progress = Progress::new("Deleting", victims.len());
        let results = crate::apiclient::parallel(
            &victims,
            WORKERS,
            |name| -> anyhow::Result<()> {
                let resp = client.request("DELETE", &api.item(ns, name), None)?;
                if resp.ok() || resp.status == 404 {
                    Ok(())
                } else {
                    Err(anyhow!("delete {name}: {}", resp.message()))
                }
            },
            || progress.tick(),
        );
        progress.finish();
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(Result::err)
            .map(|e| format!("{e:#}"))
            .collect();
        tracing::info!(counter = victims.len() - errors.len(), kind = %kind, elapsed = %duration::human(started.elapsed()), "Deleted resources");
        if !errors.is_empty() {
            bail!(
                "{} of {} objects could not be deleted: {}",
                errors.len(),
                victims.len(),
                errors[0]
            );
        }
    } else {
        tracing::info!(kind = %kind, replicas = want, "Nothing to do");
    }
    Ok(())
}

/// A `KwokctlResource` named `kind` from `--config` (or the cluster's `kwok.yaml`), else the
/// built-in one.
fn find_resource(
    ctx: &Context,
    cluster_documents: &[Value],
    kind: &str,
) -> anyhow::Result<Resource> {
    let doc = ctx
        .config
        .documents
        .iter()
        .rev()
        .chain(cluster_documents.iter().rev())
        .find(|d| {
            crate::config::is_kind(d, scale::KWOKCTL_RESOURCE)
                && d.pointer("/metadata/name").and_then(Value::as_str) == Some(kind)
        });
    if let Some(doc) = doc {
        return Resource::from_document(doc);
    }
    match Resource::builtin(kind) {
        Some(r) => {
            tracing::debug!(kind, "No resource found, use default resource");
            Ok(r)
        }
        None => bail!(
            "no resource {kind:?}: the built-in ones are node and pod; define others with a KwokctlResource in --config"
        ),
    }
}
