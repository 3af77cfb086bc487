//! The `create cluster` options beyond runtime, ports and binaries: the kube-apiserver knobs
//! (feature gates, runtime config, audit policy, admission, Kubernetes version, insecure port),
//! the scheduler config, QPS limits, CRDs, node lease and heartbeat timing, the component list,
//! and the images, binaries and ports of components only container runtimes use. This module
//! owns their flags, their `options` fields in `kwok.yaml` (upstream's names), their `KWOK_*`
//! variables, their defaults and checks, and the arguments they add to each component.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::config::Options;
use crate::paths::{ClusterPaths, Env};

/// Flags of `create cluster` handled here; `None` means "not given".
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterFlags {
    /// Default of components, e.g. etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kwok-controller
    #[arg(long, value_delimiter = ',')]
    pub components: Option<Vec<String>>,
    /// Port of the apiserver serving plain HTTP without authentication (default none)
    #[arg(long)]
    pub kube_apiserver_insecure_port: Option<u32>,
    /// The apiserver port on which to serve HTTPS with authentication and authorization (default true)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub secure_port: Option<bool>,
    /// Enable admission for kube-apiserver (default true)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub kube_admission: Option<bool>,
    /// Port of kube-controller-manager given to the host (binary runtime with upstream's binary)
    #[arg(long)]
    pub kube_controller_manager_port: Option<u32>,
    /// Port of kube-scheduler given to the host (binary runtime with upstream's binary)
    #[arg(long)]
    pub kube_scheduler_port: Option<u32>,
    /// Port of prometheus given to the host; non-zero enables prometheus (default random when enabled)
    #[arg(long)]
    pub prometheus_port: Option<u32>,
    /// Port of jaeger's query UI given to the host; non-zero enables jaeger (default random when enabled)
    #[arg(long)]
    pub jaeger_port: Option<u32>,
    /// Port to expose Kueueviz UI (recorded; Kueueviz is not run)
    #[arg(long)]
    pub kueueviz_port: Option<u32>,
    /// Port of dashboard given to the host (recorded; the dashboard is not run)
    #[arg(long, hide = true)]
    pub dashboard_port: Option<u32>,
    /// Quota backend size of etcd (default 8Gi)
    #[arg(long)]
    pub etcd_quota_backend_size: Option<String>,
    /// A set of key=value pairs that describe feature gates for alpha/experimental features of Kubernetes
    #[arg(long)]
    pub kube_feature_gates: Option<String>,
    /// A set of key=value pairs that enable or disable built-in APIs
    #[arg(long)]
    pub kube_runtime_config: Option<String>,
    /// Path to the file that defines the audit policy configuration
    #[arg(long)]
    pub kube_audit_policy: Option<String>,
    /// Path to a kube-scheduler configuration file
    #[arg(long)]
    pub kube_scheduler_config: Option<String>,
    /// Version of Kubernetes the API server reports (supported: 1.27 to 1.33)
    #[arg(long)]
    pub kube_version: Option<String>,
    /// Pull without printing progress information (recorded; no image is pulled)
    #[arg(long)]
    pub quiet_pull: bool,
    /// Disable QPS limits for components
    #[arg(long)]
    pub disable_qps_limits: bool,
    /// List of CRDs to enable (the simulator reads them from the API instead of the config)
    #[arg(long, value_delimiter = ',')]
    pub enable_crds: Option<Vec<String>>,
    /// Lease duration of nodes in seconds, multiplied by --heartbeat-factor (default 40)
    #[arg(long)]
    pub node_lease_duration_seconds: Option<u64>,
    /// Scale factor for all about heartbeat (default 5)
    #[arg(long)]
    pub heartbeat_factor: Option<f64>,
    #[command(flatten)]
    pub artifacts: ArtifactFlags,
}

/// Images and download sources of components, which only upstream's container, kind and
/// download paths use: accepted and recorded.
#[derive(Debug, Clone, Default, Args)]
pub struct ArtifactFlags {
    /// Image of etcd, only for docker/podman/nerdctl runtime
    #[arg(long)]
    pub etcd_image: Option<String>,
    /// Image of kube-apiserver, only for docker/podman/nerdctl runtime
    #[arg(long)]
    pub kube_apiserver_image: Option<String>,
    /// Image of kube-controller-manager, only for docker/podman/nerdctl runtime
    #[arg(long)]
    pub kube_controller_manager_image: Option<String>,
    /// Image of kube-scheduler, only for docker/podman/nerdctl runtime
    #[arg(long)]
    pub kube_scheduler_image: Option<String>,
    /// Image of kwok-controller, only for docker/podman/nerdctl/kind runtime
    #[arg(long)]
    pub kwok_controller_image: Option<String>,
    /// Image of metrics-server, only for docker/podman/nerdctl/kind runtime
    #[arg(long)]
    pub metrics_server_image: Option<String>,
    /// Image of Prometheus, only for docker/podman/nerdctl/kind runtime
    #[arg(long)]
    pub prometheus_image: Option<String>,
    /// Image of Jaeger, only for docker/podman/nerdctl/kind runtime
    #[arg(long)]
    pub jaeger_image: Option<String>,
    /// Image of kind node, only for kind runtime
    #[arg(long)]
    pub kind_node_image: Option<String>,
    /// Image of dashboard (removed upstream; recorded)
    #[arg(long, hide = true)]
    pub dashboard_image: Option<String>,
    /// Binary of metrics-server, only for binary runtime (recorded; the embedded cluster serves the metrics API)
    #[arg(long)]
    pub metrics_server_binary: Option<String>,
    /// Binary of prometheus (a local path; default: prometheus on PATH)
    #[arg(long)]
    pub prometheus_binary: Option<String>,
    /// Binary of jaeger (a local path; default: jaeger-all-in-one or jaeger on PATH)
    #[arg(long)]
    pub jaeger_binary: Option<String>,
    /// Binary of kind, only for kind runtime (recorded)
    #[arg(long)]
    pub kind_binary: Option<String>,
    /// Tar of etcd (deprecated upstream; recorded, --etcd-binary wins)
    #[arg(long)]
    pub etcd_binary_tar: Option<String>,
    /// Tar of Prometheus (deprecated upstream; recorded)
    #[arg(long)]
    pub prometheus_binary_tar: Option<String>,
    /// Tar of Jaeger (deprecated upstream; recorded)
    #[arg(long)]
    pub jaeger_binary_tar: Option<String>,
}

/// The `options` fields of a `KwokctlConfiguration` handled here, with upstream's JSON names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOptions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kube_apiserver_insecure_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_port: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_admission: Option<bool>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prometheus_port: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jaeger_port: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kueueviz_port: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dashboard_port: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etcd_quota_backend_size: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_feature_gates: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_runtime_config: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_audit_policy: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_scheduler_config: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub quiet_pull: bool,
    #[serde(default, rename = "disableQPSLimits", skip_serializing_if = "is_false")]
    pub disable_qps_limits: bool,
    #[serde(default, rename = "enableCRDs", skip_serializing_if = "Vec::is_empty")]
    pub enable_crds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_lease_duration_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_status_update_frequency_milliseconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_controller_manager_node_monitor_period_milliseconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_controller_manager_node_monitor_grace_period_milliseconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etcd_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_apiserver_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_controller_manager_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_scheduler_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kwok_controller_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metrics_server_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prometheus_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jaeger_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind_node_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dashboard_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metrics_server_binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prometheus_binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jaeger_binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind_binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etcd_binary_tar: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prometheus_binary_tar: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jaeger_binary_tar: String,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Upstream's defaults that the heartbeat factor multiplies.
pub const DEFAULT_NODE_LEASE_DURATION_SECONDS: u64 = 40;
pub const DEFAULT_HEARTBEAT_FACTOR: f64 = 5.0;
const DEFAULT_NODE_STATUS_UPDATE_FREQUENCY_MS: u64 = 10_000;
const DEFAULT_NODE_MONITOR_PERIOD_MS: u64 = 5_000;
const DEFAULT_NODE_MONITOR_GRACE_PERIOD_MS: u64 = 40_000;
/// etcd's `--quota-backend-bytes`, as upstream sizes it.
pub const DEFAULT_ETCD_QUOTA_BACKEND_SIZE: &str = "8Gi";

/// Kubernetes minor versions the API server can present itself as.
pub const SUPPORTED_MINORS: std::ops::RangeInclusive<u64> = 27..=33;

/// Every component name upstream knows, and whether a cluster must keep it.
const KNOWN_COMPONENTS: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "metrics-server",
    "prometheus",
    "jaeger",
    "kube-apiserver-insecure-proxy",
    "dashboard",
];

/// Components that are recorded but not run by the embedded and binary runtimes.
const UNRUN_COMPONENTS: &[&str] = &["dashboard", "kueueviz"];

/// Plugins of kube-apiserver 1.33's default set that the `kwok apiserver` runs; switched off
/// together by `--kube-admission=false`.
pub const ADMISSION_PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "ServiceAccount",
    "Priority",
    "DefaultTolerationSeconds",
    "DefaultStorageClass",
    "DefaultIngressClass",
    "CertificateApproval",
    "CertificateSigning",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
];

/// The simulation kinds `--enable-crds` takes, as upstream lists them.
pub const CRD_KINDS: &[&str] = &[
    "Stage",
    "Attach",
    "ClusterAttach",
    "Exec",
    "ClusterExec",
    "PortForward",
    "ClusterPortForward",
    "Logs",
    "ClusterLogs",
    "ResourceUsage",
    "ClusterResourceUsage",
    "Metric",
];

type Switch = (
    fn(&mut ClusterOptions) -> &mut Option<bool>,
    &'static str,
    fn(&ClusterFlags) -> Option<bool>,
);
type Text = (
    fn(&mut ClusterOptions) -> &mut String,
    Option<&'static str>,
    fn(&ClusterFlags) -> &Option<String>,
);
type PortField = (
    fn(&mut Options) -> &mut u32,
    Option<&'static str>,
    fn(&ClusterFlags) -> Option<u32>,
);

/// Text options: (field, `KWOK_*` variable, flag).
const TEXT: &[Text] = &[
    (
        |o| &mut o.etcd_quota_backend_size,
        None,
        |f| &f.etcd_quota_backend_size,
    ),
    (
        |o| &mut o.kube_feature_gates,
        Some("KUBE_FEATURE_GATES"),
        |f| &f.kube_feature_gates,
    ),
    (
        |o| &mut o.kube_runtime_config,
        Some("KUBE_RUNTIME_CONFIG"),
        |f| &f.kube_runtime_config,
    ),
    (
        |o| &mut o.kube_audit_policy,
        Some("KUBE_AUDIT_POLICY"),
        |f| &f.kube_audit_policy,
    ),
    (
        |o| &mut o.kube_scheduler_config,
        None,
        |f| &f.kube_scheduler_config,
    ),
    (
        |o| &mut o.kube_version,
        Some("KUBE_VERSION"),
        |f| &f.kube_version,
    ),
    (
        |o| &mut o.etcd_image,
        Some("ETCD_IMAGE"),
        |f| &f.artifacts.etcd_image,
    ),
    (
        |o| &mut o.kube_apiserver_image,
        Some("KUBE_APISERVER_IMAGE"),
        |f| &f.artifacts.kube_apiserver_image,
    ),
    (
        |o| &mut o.kube_controller_manager_image,
        Some("KUBE_CONTROLLER_MANAGER_IMAGE"),
        |f| &f.artifacts.kube_controller_manager_image,
    ),
    (
        |o| &mut o.kube_scheduler_image,
        Some("KUBE_SCHEDULER_IMAGE"),
        |f| &f.artifacts.kube_scheduler_image,
    ),
    (
        |o| &mut o.kwok_controller_image,
        Some("CONTROLLER_IMAGE"),
        |f| &f.artifacts.kwok_controller_image,
    ),
    (
        |o| &mut o.metrics_server_image,
        Some("METRICS_SERVER_IMAGE"),
        |f| &f.artifacts.metrics_server_image,
    ),
    (
        |o| &mut o.prometheus_image,
        Some("PROMETHEUS_IMAGE"),
        |f| &f.artifacts.prometheus_image,
    ),
    (
        |o| &mut o.jaeger_image,
        Some("JAEGER_IMAGE"),
        |f| &f.artifacts.jaeger_image,
    ),
    (
        |o| &mut o.kind_node_image,
        Some("KIND_NODE_IMAGE"),
        |f| &f.artifacts.kind_node_image,
    ),
    (
        |o| &mut o.dashboard_image,
        Some("DASHBOARD_IMAGE"),
        |f| &f.artifacts.dashboard_image,
    ),
    (
        |o| &mut o.metrics_server_binary,
        Some("METRICS_SERVER_BINARY"),
        |f| &f.artifacts.metrics_server_binary,
    ),
    (
        |o| &mut o.prometheus_binary,
        Some("PROMETHEUS_BINARY"),
        |f| &f.artifacts.prometheus_binary,
    ),
    (
        |o| &mut o.jaeger_binary,
        Some("JAEGER_BINARY"),
        |f| &f.artifacts.jaeger_binary,
    ),
    (
        |o| &mut o.kind_binary,
        Some("KIND_BINARY"),
        |f| &f.artifacts.kind_binary,
    ),
    (
        |o| &mut o.etcd_binary_tar,
        Some("ETCD_BINARY_TAR"),
        |f| &f.artifacts.etcd_binary_tar,
    ),
    (
        |o| &mut o.prometheus_binary_tar,
        Some("PROMETHEUS_BINARY_TAR"),
        |f| &f.artifacts.prometheus_binary_tar,
    ),
    (
        |o| &mut o.jaeger_binary_tar,
        Some("JAEGER_BINARY_TAR"),
        |f| &f.artifacts.jaeger_binary_tar,
    ),
];

/// Port options: (field, `KWOK_*` variable, flag).
const PORTS: &[PortField] = &[
    (
        |o| &mut o.cluster.kube_apiserver_insecure_port,
        Some("KUBE_APISERVER_INSECURE_PORT"),
        |f| f.kube_apiserver_insecure_port,
    ),
    (
        |o| &mut o.kube_controller_manager_port,
        Some("KUBE_CONTROLLER_MANAGER_PORT"),
        |f| f.kube_controller_manager_port,
    ),
    (
        |o| &mut o.kube_scheduler_port,
        Some("KUBE_SCHEDULER_PORT"),
        |f| f.kube_scheduler_port,
    ),
    (
        |o| &mut o.cluster.prometheus_port,
        Some("PROMETHEUS_PORT"),
        |f| f.prometheus_port,
    ),
    (
        |o| &mut o.cluster.jaeger_port,
        Some("JAEGER_PORT"),
        |f| f.jaeger_port,
    ),
    (|o| &mut o.cluster.kueueviz_port, None, |f| f.kueueviz_port),
    (
        |o| &mut o.cluster.dashboard_port,
        None,
        |f| f.dashboard_port,
    ),
];

/// Switches that may be unset: (field, `KWOK_*` variable, flag).
const SWITCHES: &[Switch] = &[
    (|o| &mut o.secure_port, "SECURE_PORT", |f| f.secure_port),
    (
        |o| &mut o.kube_admission,
        "KUBE_ADMISSION",
        |f| f.kube_admission,
    ),
];

/// Applies flags > `KWOK_*` env > what `options` already holds (from files) > defaults to the
/// options handled here. Unparsable env values are ignored, as upstream does.
pub fn resolve(options: &mut Options, env: &Env, flags: &ClusterFlags) {
    for (field, var, flag) in TEXT {
        let value = flag(flags)
            .as_deref()
            .filter(|v| !v.is_empty())
            .or_else(|| var.and_then(|v| env.kwok(v)));
        if let Some(value) = value {
            *field(&mut options.cluster) = value.to_string();
        }
    }
    for (field, var, flag) in PORTS {
        let from_env = var.and_then(|v| env.kwok(v)?.parse::<u32>().ok());
        if let Some(value) = flag(flags).or(from_env) {
            *field(options) = value;
        }
    }
    for (field, var, flag) in SWITCHES {
        let from_env = env.kwok(var).and_then(|v| v.parse::<bool>().ok());
        if let Some(value) = flag(flags).or(from_env) {
            *field(&mut options.cluster) = Some(value);
        }
    }
    let cluster = &mut options.cluster;
    let quiet_pull = env.kwok("QUIET_PULL").and_then(|v| v.parse::<bool>().ok());
    cluster.quiet_pull = flags.quiet_pull || quiet_pull.unwrap_or(cluster.quiet_pull);
    cluster.disable_qps_limits |= flags.disable_qps_limits;
    if let Some(list) = &flags.components {
        cluster.components = list.clone();
    }
    if let Some(list) = &flags.enable_crds {
        cluster.enable_crds = list.clone();
    }
    if let Some(value) = flags.node_lease_duration_seconds {
        cluster.node_lease_duration_seconds = Some(value);
    }
    if let Some(value) = flags.heartbeat_factor {
        cluster.heartbeat_factor = Some(value);
    }
    apply_defaults(options);
}

/// Fills the defaults, then multiplies the heartbeat timings by the heartbeat factor and resets
/// it to 1, as upstream does, so a recorded configuration is not scaled twice.
fn apply_defaults(options: &mut Options) {
    let authorization = options.kube_authorization.unwrap_or(true);
    let c = &mut options.cluster;
    if c.etcd_quota_backend_size.is_empty() {
        c.etcd_quota_backend_size = DEFAULT_ETCD_QUOTA_BACKEND_SIZE.to_string();
    }
    c.secure_port.get_or_insert(true);
    // As upstream: admission follows authorization unless asked for.
    c.kube_admission.get_or_insert(authorization);
    let factor = *c.heartbeat_factor.get_or_insert(DEFAULT_HEARTBEAT_FACTOR);
    let scale = |value: &mut Option<u64>, default: u64| {
        let base = value.unwrap_or(default);
        *value = Some(if factor > 0.0 && factor != 1.0 {
            (base as f64 * factor).round() as u64
        } else {
            base
        });
    };
    scale(
        &mut c.node_lease_duration_seconds,
        DEFAULT_NODE_LEASE_DURATION_SECONDS,
    );
    scale(
        &mut c.node_status_update_frequency_milliseconds,
        DEFAULT_NODE_STATUS_UPDATE_FREQUENCY_MS,
    );
    scale(
        &mut c.kube_controller_manager_node_monitor_period_milliseconds,
        DEFAULT_NODE_MONITOR_PERIOD_MS,
    );
    scale(
        &mut c.kube_controller_manager_node_monitor_grace_period_milliseconds,
        DEFAULT_NODE_MONITOR_GRACE_PERIOD_MS,
    );
    c.heartbeat_factor = Some(1.0);
}

/// Checks the options handled here: a Kubernetes version we can present, known component and
/// CRD names, a positive heartbeat factor, a parsable etcd quota. Warns about components that
/// are recorded but not run.
pub fn check(options: &Options) -> Result<(), String> {
    let c = &options.cluster;
    if !c.kube_version.is_empty() {
        check_kube_version(&c.kube_version)?;
    }
    for name in &c.components {
        if !KNOWN_COMPONENTS.contains(&name.as_str()) {
            return Err(format!(
                "unknown component {name:?} for --components: known components are {}",
                KNOWN_COMPONENTS.join(", ")
            ));
        }
    }
    if !c.components.is_empty() {
        for required in ["etcd", "kube-apiserver"] {
            if !c.components.iter().any(|n| n == required) {
                return Err(format!("{required} must be enabled"));
            }
        }
    }
    for crd in &c.enable_crds {
        if !CRD_KINDS.contains(&crd.as_str()) {
            return Err(format!("invalid crd: {crd}"));
        }
    }
    if let Some(f) = c.heartbeat_factor
        && !(f.is_finite() && f > 0.0)
    {
        return Err(format!("--heartbeat-factor {f} must be a positive number"));
    }
    parse_quantity(&c.etcd_quota_backend_size)
        .map_err(|e| format!("--etcd-quota-backend-size: {e}"))?;
    let unrun: Vec<&str> = UNRUN_COMPONENTS
        .iter()
        .copied()
        .filter(|name| {
            c.components.iter().any(|n| n == name)
                || options.enable.iter().any(|n| n == name)
                || port_of(c, name) != 0
        })
        .collect();
    if !unrun.is_empty() {
        tracing::warn!(components = ?unrun, "Some enabled components are not used in the runtime");
    }
    if c.secure_port == Some(false) {
        tracing::warn!("--secure-port=false is not supported: the API server always serves HTTPS");
    }
    Ok(())
}

fn port_of(c: &ClusterOptions, component: &str) -> u32 {
    match component {
        "prometheus" => c.prometheus_port,
        "jaeger" => c.jaeger_port,
        "kueueviz" => c.kueueviz_port,
        "dashboard" => c.dashboard_port,
        _ => 0,
    }
}

/// Accepts `v1.33`, `1.33.2`, `v1.30.0-alpha.1`; refuses versions outside 1.27–1.33.
pub fn check_kube_version(version: &str) -> Result<(), String> {
    let trimmed = version.trim_start_matches('v');
    let mut parts = trimmed.split(['.', '-', '+']);
    let major = parts.next().and_then(|p| p.parse::<u64>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u64>().ok());
    match (major, minor) {
        (Some(1), Some(minor)) if SUPPORTED_MINORS.contains(&minor) => Ok(()),
        (Some(_), Some(_)) => Err(format!(
            "unsupported kube version {version:?}: supported versions are v1.{} to v1.{}",
            SUPPORTED_MINORS.start(),
            SUPPORTED_MINORS.end()
        )),
        _ => Err(format!(
            "invalid kube version {version:?}: want v1.<minor>[.<patch>]"
        )),
    }
}

/// A Kubernetes quantity in bytes: `8Gi`, `500M`, `1073741824`.
pub fn parse_quantity(text: &str) -> Result<u64, String> {
    const UNITS: &[(&str, u64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((text, 1));
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("invalid quantity {text:?}"))
}

/// A duration in milliseconds as Kubernetes components write it: `25s`, `3m20s`, `7500ms`.
pub fn go_duration(ms: u64) -> String {
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

/// Where a given audit policy and scheduler config are copied in the cluster folder, as
/// upstream names them.
pub fn audit_policy_path(paths: &ClusterPaths) -> PathBuf {
    paths.dir.join("audit.yaml")
}

pub fn scheduler_config_path(paths: &ClusterPaths) -> PathBuf {
    paths.dir.join("scheduler.yaml")
}

/// The files to copy into the cluster folder: (source as given, destination).
pub fn files_to_copy(options: &Options, paths: &ClusterPaths) -> Vec<(String, PathBuf)> {
    let c = &options.cluster;
    let mut out = Vec::new();
    if !c.kube_audit_policy.is_empty() {
        out.push((c.kube_audit_policy.clone(), audit_policy_path(paths)));
    }
    if !c.kube_scheduler_config.is_empty() {
        out.push((
            c.kube_scheduler_config.clone(),
            scheduler_config_path(paths),
        ));
    }
    out
}

/// Copies the audit policy and scheduler config into the cluster folder.
pub fn copy_files(options: &Options, paths: &ClusterPaths, env: &Env) -> anyhow::Result<()> {
    use anyhow::Context as _;
    for (source, destination) in files_to_copy(options, paths) {
        let source = env.expand(&source);
        std::fs::copy(&source, &destination)
            .with_context(|| format!("copy {} to {}", source.display(), destination.display()))?;
    }
    Ok(())
}

/// Which API server a component argument list is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `kwok apiserver`.
    Kwok,
    /// upstream's kube-apiserver binary.
    Upstream,
}

/// The kube-apiserver arguments these options call for.
pub fn apiserver_args(options: &Options, paths: &ClusterPaths, server: Server) -> Vec<String> {
    let c = &options.cluster;
    let mut args = Vec::new();
    let mut flag = |name: &str, value: &str| args.push(format!("--{name}={value}"));
    if !c.kube_feature_gates.is_empty() {
        flag("feature-gates", &c.kube_feature_gates);
    }
    if !c.kube_runtime_config.is_empty() {
        flag("runtime-config", &c.kube_runtime_config);
    }
    if !c.kube_audit_policy.is_empty() {
        flag(
            "audit-policy-file",
            &audit_policy_path(paths).display().to_string(),
        );
        flag("audit-log-path", &paths.audit_log().display().to_string());
    }
    if c.kube_admission == Some(false) {
        match server {
            Server::Kwok => flag("disable-admission-plugins", &ADMISSION_PLUGINS.join(",")),
            Server::Upstream => flag("admission-control", ""),
        }
    }
    if c.disable_qps_limits {
        flag("max-requests-inflight", "0");
        flag("max-mutating-requests-inflight", "0");
        flag("enable-priority-and-fairness", "false");
    }
    if server == Server::Kwok {
        if !c.kube_version.is_empty() {
            flag("kube-version", &c.kube_version);
        }
        if c.kube_apiserver_insecure_port != 0 {
            flag("insecure-port", &c.kube_apiserver_insecure_port.to_string());
        }
    }
    args
}

/// Arguments for whatever runs the node lifecycle controller (`kwok apiserver`, `kwok
/// controller-manager`, upstream's kube-controller-manager).
pub fn node_monitor_args(options: &Options) -> Vec<String> {
    let c = &options.cluster;
    let mut args = Vec::new();
    if let Some(ms) = c.kube_controller_manager_node_monitor_period_milliseconds {
        args.push(format!("--node-monitor-period={}", go_duration(ms)));
    }
    if let Some(ms) = c.kube_controller_manager_node_monitor_grace_period_milliseconds {
        args.push(format!("--node-monitor-grace-period={}", go_duration(ms)));
    }
    args
}

/// QPS flags of upstream's kube-controller-manager and kube-scheduler.
pub fn client_qps_args(options: &Options) -> Vec<String> {
    if options.cluster.disable_qps_limits {
        vec![
            "--kube-api-qps=5000".to_string(),
            "--kube-api-burst=10000".to_string(),
        ]
    } else {
        Vec::new()
    }
}

/// The scheduler config argument, for whatever runs the scheduler.
pub fn scheduler_config_args(options: &Options, paths: &ClusterPaths, flag: &str) -> Vec<String> {
    if options.cluster.kube_scheduler_config.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "--{flag}={}",
        scheduler_config_path(paths).display()
    )]
}

/// The simulator's arguments (`kwok`, or `kwok apiserver --simulate`).
pub fn simulator_args(options: &Options) -> Vec<String> {
    let c = &options.cluster;
    let mut args = Vec::new();
    if let Some(seconds) = c.node_lease_duration_seconds {
        args.push(format!("--node-lease-duration-seconds={seconds}"));
    }
    if !c.enable_crds.is_empty() {
        args.push(format!("--enable-crds={}", c.enable_crds.join(",")));
    }
    args
}

/// Whether a document of the config belongs in the cluster's `kwok.yaml`: simulation kinds
/// enabled as CRDs are read from the API instead, as upstream leaves them out.
pub fn keeps_document(options: &Options, kind: &str) -> bool {
    !options.cluster.enable_crds.iter().any(|k| k == kind)
}

/// Whether a component is switched off by the `components` list.
pub fn left_out(options: &Options, component: &str) -> bool {
    !options.cluster.components.is_empty()
        && !options.cluster.components.iter().any(|c| c == component)
}

/// Whether `path` names something a user gave and that exists (for early, clear errors).
pub fn check_files(options: &Options, env: &Env) -> Result<(), String> {
    for (source, _) in files_to_copy(options, &ClusterPaths::new(Path::new(""))) {
        if !env.expand(&source).is_file() {
            return Err(format!("file {source:?} does not exist"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(env: &[(&str, &str)], flags: ClusterFlags) -> Options {
        let mut options = Options::default();
        resolve(&mut options, &Env::from_pairs(env.iter().copied()), &flags);
        options
    }

    #[test]
    fn heartbeat_factor_scales_upstream_defaults_once() {
        let o = resolved(&[], ClusterFlags::default());
        let c = &o.cluster;
        assert_eq!(c.node_lease_duration_seconds, Some(200));
        assert_eq!(c.node_status_update_frequency_milliseconds, Some(50_000));
        assert_eq!(
            node_monitor_args(&o),
            [
                "--node-monitor-period=25s",
                "--node-monitor-grace-period=3m20s"
            ]
        );
        assert_eq!(c.heartbeat_factor, Some(1.0));
        // Resolving the recorded options again changes nothing.
        let mut again = o.clone();
        resolve(&mut again, &Env::default(), &ClusterFlags::default());
        assert_eq!(again, o);
        let custom = resolved(
            &[],
            ClusterFlags {
                node_lease_duration_seconds: Some(10),
                heartbeat_factor: Some(1.5),
                ..Default::default()
            },
        );
        assert_eq!(custom.cluster.node_lease_duration_seconds, Some(15));
        assert_eq!(
            node_monitor_args(&custom),
            [
                "--node-monitor-period=7500ms",
                "--node-monitor-grace-period=1m0s"
            ]
        );
    }

    #[test]
    fn flags_beat_env_beat_files() {
        let mut options = Options::default();
        options.cluster.kube_feature_gates = "A=true".into();
        options.cluster.kube_version = "v1.30.0".into();
        let env = Env::from_pairs([
            ("KWOK_KUBE_FEATURE_GATES", "B=true"),
            ("KWOK_KUBE_APISERVER_INSECURE_PORT", "8001"),
            ("KWOK_KUBE_ADMISSION", "false"),
            ("KWOK_PROMETHEUS_PORT", "nope"),
        ]);
        let flags = ClusterFlags {
            kube_feature_gates: Some("C=true".into()),
            ..Default::default()
        };
        resolve(&mut options, &env, &flags);
        let c = &options.cluster;
        assert_eq!(c.kube_feature_gates, "C=true");
        assert_eq!(c.kube_version, "v1.30.0");
        assert_eq!(c.kube_apiserver_insecure_port, 8001);
        assert_eq!(c.kube_admission, Some(false));
        assert_eq!(c.prometheus_port, 0);
        assert_eq!(c.secure_port, Some(true));
    }

    #[test]
    fn kube_admission_follows_authorization_unless_asked() {
        let mut options = Options::default();
        resolve(&mut options, &Env::default(), &ClusterFlags::default());
        assert_eq!(options.cluster.kube_admission, Some(true));
        assert!(apiserver_args(&options, &ClusterPaths::new("/c"), Server::Kwok).is_empty());
        let mut options = Options {
            kube_authorization: Some(false),
            ..Default::default()
        };
        resolve(&mut options, &Env::default(), &ClusterFlags::default());
        assert_eq!(options.cluster.kube_admission, Some(false));
        let args = apiserver_args(&options, &ClusterPaths::new("/c"), Server::Kwok).join(" ");
        assert!(args.contains("--disable-admission-plugins="), "{args}");
        let mut options = Options {
            kube_authorization: Some(false),
            cluster: ClusterOptions {
                kube_admission: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        resolve(&mut options, &Env::default(), &ClusterFlags::default());
        assert_eq!(options.cluster.kube_admission, Some(true));
    }

    #[test]
    fn checks_name_the_accepted_values() {
        assert!(check_kube_version("v1.33.1").is_ok());
        assert!(check_kube_version("1.27").is_ok());
        assert_eq!(
            check_kube_version("v1.36.1").unwrap_err(),
            "unsupported kube version \"v1.36.1\": supported versions are v1.27 to v1.33"
        );
        assert!(
            check_kube_version("latest")
                .unwrap_err()
                .contains("invalid kube version")
        );
        let mut o = resolved(&[], ClusterFlags::default());
        o.cluster.components = vec!["etcd".into(), "kube-apiserver".into(), "grafana".into()];
        assert!(
            check(&o)
                .unwrap_err()
                .starts_with("unknown component \"grafana\" for --components")
        );
        o.cluster.components = vec!["kube-apiserver".into()];
        assert_eq!(check(&o).unwrap_err(), "etcd must be enabled");
        o.cluster.components.clear();
        o.cluster.enable_crds = vec!["Foo".into()];
        assert_eq!(check(&o).unwrap_err(), "invalid crd: Foo");
        o.cluster.enable_crds.clear();
        o.cluster.etcd_quota_backend_size = "lots".into();
        assert!(check(&o).is_err());
        assert_eq!(parse_quantity("8Gi"), Ok(8 << 30));
    }

    #[test]
    fn apiserver_args_per_option() {
        let paths = ClusterPaths::new("/w/c");
        let mut o = resolved(&[], ClusterFlags::default());
        assert!(apiserver_args(&o, &paths, Server::Kwok).is_empty());
        o.cluster.kube_feature_gates = "A=true".into();
        o.cluster.kube_runtime_config = "api/all=true".into();
        o.cluster.kube_audit_policy = "/tmp/p.yaml".into();
        o.cluster.kube_admission = Some(false);
        o.cluster.disable_qps_limits = true;
        o.cluster.kube_version = "v1.30.0".into();
        o.cluster.kube_apiserver_insecure_port = 8001;
        let args = apiserver_args(&o, &paths, Server::Kwok);
        assert_eq!(
            args,
            [
                "--feature-gates=A=true",
                "--runtime-config=api/all=true",
                "--audit-policy-file=/w/c/audit.yaml",
                "--audit-log-path=/w/c/logs/audit.log",
                &format!(
                    "--disable-admission-plugins={}",
                    ADMISSION_PLUGINS.join(",")
                ),
                "--max-requests-inflight=0",
                "--max-mutating-requests-inflight=0",
                "--enable-priority-and-fairness=false",
                "--kube-version=v1.30.0",
                "--insecure-port=8001",
            ]
        );
        let upstream = apiserver_args(&o, &paths, Server::Upstream);
        assert!(upstream.contains(&"--admission-control=".to_string()));
        assert!(!upstream.iter().any(|a| a.starts_with("--kube-version")));
        assert_eq!(client_qps_args(&o).len(), 2);
    }
}
