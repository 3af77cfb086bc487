//! `kwokctl get artifacts`: the programs and images a runtime would use for the cluster, from
//! the cluster's recorded config when it exists, else from the configuration files and flags.

use std::io::IsTerminal;

use crate::cli::GetArtifactsArgs;
use crate::config::Options;
use crate::context::Context;
use crate::runtime::{Cluster, DEFAULT_RUNTIME, RuntimeKind};

/// Upstream's versions of the images and downloads its container runtimes use.
const KUBE_VERSION: &str = "v1.36.1";
const KWOK_VERSION: &str = "v0.9.0";
const ETCD_IMAGE_TAG: &str = "3.6.10-0";
const KIND_VERSION: &str = "v0.32.0";

/// The images of upstream's compose runtimes, per component.
const COMPOSE_IMAGES: &[(&str, &str)] = &[
    ("etcd", "registry.k8s.io/etcd"),
    ("kube-apiserver", "registry.k8s.io/kube-apiserver"),
    (
        "kube-controller-manager",
        "registry.k8s.io/kube-controller-manager",
    ),
    ("kube-scheduler", "registry.k8s.io/kube-scheduler"),
    ("kwok-controller", "registry.k8s.io/kwok/kwok"),
];

pub fn artifacts(ctx: &Context, args: &GetArtifactsArgs) -> anyhow::Result<()> {
    let (runtime, options) = runtime_and_options(ctx, &args.runtime)?;
    let kind = RuntimeKind::parse(&runtime)
        .ok_or_else(|| anyhow::anyhow!("runtime {runtime:?} not found"))?;
    let mut list = Vec::new();
    if args.filter.is_empty() || args.filter == "binary" {
        list.extend(binaries(ctx, kind, &options));
    }
    if args.filter.is_empty() || args.filter == "image" {
        list.extend(images(kind, &options));
    }
    // Any other filter matches nothing, as upstream.
    list.sort();
    list.dedup();
    if list.is_empty() {
        if std::io::stderr().is_terminal() {
            if args.filter.is_empty() {
                eprintln!("No artifacts found for runtime {runtime:?}");
            } else {
                eprintln!(
                    "No artifacts found for runtime {runtime:?} and filter {:?}",
                    args.filter
                );
            }
        }
        return Ok(());
    }
    for item in list {
        println!("{item}");
    }
    Ok(())
}

/// The runtime (flag, else the existing cluster's, else the configuration's, else the default)
/// and the options that go with it.
fn runtime_and_options(ctx: &Context, flag: &str) -> anyhow::Result<(String, Options)> {
    let options = match Cluster::load(&ctx.name, &ctx.cluster_paths()) {
        Ok(cluster) => cluster.config.options,
        Err(_) => ctx.config.kwokctl_configuration()?.options,
    };
    let runtime = [flag, options.runtime.as_str()]
        .into_iter()
        .find(|r| !r.is_empty())
        .unwrap_or(DEFAULT_RUNTIME)
        .to_string();
    Ok((runtime, options))
}

fn binaries(ctx: &Context, kind: RuntimeKind, options: &Options) -> Vec<String> {
    match kind {
        RuntimeKind::Embedded => kwok_program(ctx, options).into_iter().collect(),
        RuntimeKind::Binary => binary_programs(ctx, options),
        RuntimeKind::Kind(_) => vec![kind_binary(), kubectl_url()],
        RuntimeKind::Compose(_) => vec![kubectl_url()],
    }
}

fn images(kind: RuntimeKind, options: &Options) -> Vec<String> {
    match kind {
        RuntimeKind::Embedded | RuntimeKind::Binary => Vec::new(),
        RuntimeKind::Kind(_) => vec![
            format!("docker.io/kindest/node:{KUBE_VERSION}"),
            format!("registry.k8s.io/kwok/kwok:{KWOK_VERSION}"),
        ],
        RuntimeKind::Compose(_) => COMPOSE_IMAGES
            .iter()
            .filter(|(component, _)| !options.is_disabled(component))
            .map(|(component, image)| format!("{image}:{}", image_tag(component)))
            .collect(),
    }
}

fn image_tag(component: &str) -> &'static str {
    match component {
        "etcd" => ETCD_IMAGE_TAG,
        "kwok-controller" => KWOK_VERSION,
        _ => KUBE_VERSION,
    }
}

fn kwok_program(ctx: &Context, options: &Options) -> Option<String> {
    ctx.kwok_binary(Some(&options.kwok_controller_binary))
        .ok()
        .map(|p| p.display().to_string())
}

/// The binary runtime's programs: each configured value as given (a path or a URL), else the
/// program found for it (etcd on `PATH`, `kwok` for the rest).
fn binary_programs(ctx: &Context, options: &Options) -> Vec<String> {
    let mut out = Vec::new();
    if !options.etcd_binary.is_empty() {
        out.push(options.etcd_binary.clone());
    } else if let Some(etcd) = ctx.find_in_path("etcd") {
        out.push(etcd.display().to_string());
    }
    let upstream = [
        ("kube-apiserver", &options.kube_apiserver_binary),
        (
            "kube-controller-manager",
            &options.kube_controller_manager_binary,
        ),
        ("kube-scheduler", &options.kube_scheduler_binary),
    ];
    let mut needs_kwok = !options.is_disabled("kwok-controller");
    for (component, value) in upstream {
        if options.is_disabled(component) {
            continue;
        }
        if value.is_empty() {
            needs_kwok = true;
        } else {
            out.push(value.to_string());
        }
    }
    if needs_kwok {
        out.extend(kwok_program(ctx, options));
    }
    out
}

fn platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (std::env::consts::OS, arch)
}

fn kubectl_url() -> String {
    let (os, arch) = platform();
    format!("https://dl.k8s.io/release/{KUBE_VERSION}/bin/{os}/{arch}/kubectl")
}

fn kind_binary() -> String {
    let (os, arch) = platform();
    format!(
        "https://github.com/kubernetes-sigs/kind/releases/download/{KIND_VERSION}/kind-{os}-{arch}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_images_follow_upstream_versions() {
        let options = Options::default();
        let list = images(RuntimeKind::parse("docker").unwrap(), &options);
        assert!(list.contains(&"registry.k8s.io/etcd:3.6.10-0".to_string()));
        assert!(list.contains(&"registry.k8s.io/kwok/kwok:v0.9.0".to_string()));
        assert_eq!(list.len(), 5);
        let kind = images(RuntimeKind::parse("kind-podman").unwrap(), &options);
        assert_eq!(kind[0], "docker.io/kindest/node:v1.36.1");
        assert!(images(RuntimeKind::parse("embedded").unwrap(), &options).is_empty());
    }
}
