//! `kwok` without a subcommand: upstream's kwok controller flags, the config file, the cluster
//! connection (kubeconfig / `--master` / in-cluster), and the simulator's HTTP server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use kwok::config::{Options, read_config};

/// Upstream kwok's flags.
#[derive(clap::Args, Default)]
pub struct ControllerArgs {
    /// Path to the kubeconfig file (default ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The address of the Kubernetes API server (overrides the kubeconfig's).
    #[arg(long)]
    master: Option<String>,
    /// Config files: a KwokConfiguration and Stage documents.
    #[arg(short = 'c', long = "config")]
    config: Vec<PathBuf>,
    /// CIDR of the pod IPs for nodes without a podCIDR.
    #[arg(long)]
    cidr: Option<String>,
    /// IP of the node (InternalIP, and the fallback host IP of pods).
    #[arg(long)]
    node_ip: Option<String>,
    /// Hostname address of the node.
    #[arg(long)]
    node_name: Option<String>,
    /// Port of the node (daemonEndpoints.kubeletEndpoint.Port).
    #[arg(long)]
    node_port: Option<i64>,
    /// Manage all nodes.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    manage_all_nodes: Option<bool>,
    /// Manage only the node of this name.
    #[arg(long)]
    manage_single_node: Option<String>,
    /// Manage nodes whose annotations match this selector.
    #[arg(long)]
    manage_nodes_with_annotation_selector: Option<String>,
    /// Manage nodes whose labels match this selector.
    #[arg(long)]
    manage_nodes_with_label_selector: Option<String>,
    /// Deprecated, use the Stage API.
    #[arg(long, hide = true)]
    disregard_status_with_annotation_selector: Option<String>,
    /// Deprecated, use the Stage API.
    #[arg(long, hide = true)]
    disregard_status_with_label_selector: Option<String>,
    /// Address of the HTTP server serving /healthz and /metrics.
    #[arg(long)]
    server_address: Option<String>,
    /// TLS certificate of the HTTP server (not supported yet: the server speaks HTTP).
    #[arg(long)]
    tls_cert_file: Option<PathBuf>,
    /// TLS key of the HTTP server.
    #[arg(long)]
    tls_private_key_file: Option<PathBuf>,
    /// Duration of node leases in seconds; 0 disables leases.
    #[arg(long)]
    node_lease_duration_seconds: Option<u64>,
    /// Kinds read from the API instead of the config (Stage).
    #[arg(long, value_delimiter = ',')]
    enable_crds: Vec<String>,
    /// Built-in stage sets used when no Stage is configured: fast (default), general, chaos.
    #[arg(long, value_delimiter = ',')]
    stage_set: Vec<String>,
    /// Concurrent writes per resource kind.
    #[arg(long)]
    parallelism: Option<usize>,
}

/// The options of the simulator inside `kwok apiserver --simulate`: its defaults, then the
/// `KwokConfiguration`, Stages and simulation objects of `config`, then the flags. Also returns
/// the config's `serverAddress`.
pub fn embedded_options(
    config: Option<&Path>,
    enable_crds: &[String],
    node_lease_duration_seconds: Option<u64>,
) -> anyhow::Result<(Options, Option<String>)> {
    let mut opts = Options {
        manage_all_nodes: true,
        node_lease_duration_seconds: 40,
        cidr: "10.0.0.0/16".into(),
        parallelism: 128,
        ..Options::default()
    };
    let mut server_address = None;
    if let Some(path) = config {
        apply_config_file(&mut opts, &mut server_address, path)?;
    }
    if !enable_crds.is_empty() {
        opts.enable_crds = enable_crds.to_vec();
    }
    if let Some(seconds) = node_lease_duration_seconds {
        opts.node_lease_duration_seconds = seconds;
    }
    opts.validate().map_err(|e| anyhow::anyhow!(e))?;
    Ok((opts, server_address))
}

/// Reads one config file into the simulator options: the `KwokConfiguration` options over what
/// is there, its Stages and simulation objects added.
fn apply_config_file(
    opts: &mut Options,
    server_address: &mut Option<String>,
    path: &Path,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("read config {}", path.display()))?;
    let file = read_config(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
    for e in &file.invalid {
        tracing::error!("invalid stage, skipped: {e}");
    }
    let o = file.options;
    macro_rules! set {
        ($($field:ident),*) => {$(
            if let Some(v) = o.$field {
                opts.$field = v;
            }
        )*};
    }
    set!(
        cidr,
        node_ip,
        node_name,
        node_port,
        manage_all_nodes,
        manage_single_node,
        manage_nodes_with_annotation_selector,
        manage_nodes_with_label_selector,
        node_lease_duration_seconds,
        enable_crds
    );
    if let Some(v) = o.server_address.filter(|s| !s.is_empty()) {
        *server_address = Some(v);
    }
    if let Some(v) = o
        .pod_play_stage_parallelism
        .max(o.node_play_stage_parallelism)
    {
        opts.parallelism = v.max(1);
    }
    opts.stages.extend(file.stages);
    opts.simulations.extend(file.simulations);
    Ok(())
}

fn home_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube").join("config"))
}

async fn connect(args: &ControllerArgs) -> anyhow::Result<client::HttpCluster> {
    let path = args
        .kubeconfig
        .clone()
        .or_else(|| std::env::var_os("KUBECONFIG").map(PathBuf::from))
        .or_else(home_kubeconfig);
    let path = match path {
        Some(p) if p.is_file() => Some(p),
        Some(p) => {
            if args.kubeconfig.is_some() {
                tracing::warn!(path = %p.display(), "Failed to get kubeconfig file or it is a directory");
            }
            None
        }
        None => None,
    };
    let mut config = match (&path, &args.master) {
        (Some(p), _) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(p)
                .with_context(|| format!("read kubeconfig {}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        (None, Some(master)) => kube::Config::new(master.parse().context("parse --master")?),
        (None, None) => {
            tracing::warn!("Neither --kubeconfig nor --master was specified");
            tracing::info!("Using the inClusterConfig");
            kube::Config::infer().await?
        }
    };
    if let (Some(_), Some(master)) = (&path, &args.master) {
        config.cluster_url = master.parse().context("parse --master")?;
    }
    Ok(client::HttpCluster::new(kube::Client::try_from(config)?))
}

/// Builds the simulator options: config files first, flags over them.
pub fn options(args: &ControllerArgs) -> anyhow::Result<(Options, Option<String>)> {
    let mut opts = Options::default();
    let mut server_address = None;
    for path in &args.config {
        apply_config_file(&mut opts, &mut server_address, path)?;
    }
    macro_rules! flag {
        ($field:ident) => {
            if let Some(v) = &args.$field {
                opts.$field = v.clone();
            }
        };
    }
    flag!(cidr);
    flag!(node_ip);
    flag!(node_name);
    flag!(node_port);
    flag!(manage_all_nodes);
    flag!(manage_single_node);
    flag!(manage_nodes_with_annotation_selector);
    flag!(manage_nodes_with_label_selector);
    flag!(node_lease_duration_seconds);
    flag!(parallelism);
    if !args.enable_crds.is_empty() {
        opts.enable_crds = args.enable_crds.clone();
    }
    if opts.stages.is_empty() && !args.stage_set.is_empty() {
        let lease = opts.node_lease_duration_seconds > 0;
        for set in &args.stage_set {
            opts.stages.extend(
                kwok::stage::defaults::stage_set(set, lease).map_err(|e| anyhow::anyhow!(e))?,
            );
        }
    }
    if args.disregard_status_with_annotation_selector.is_some()
        || args.disregard_status_with_label_selector.is_some()
    {
        tracing::warn!(
            "--disregard-status-with-* are deprecated and ignored. Please use Stage API instead"
        );
    }
    if args.tls_cert_file.is_some() || args.tls_private_key_file.is_some() {
        tracing::warn!(
            "--tls-cert-file and --tls-private-key-file are not supported yet; the server speaks plain HTTP"
        );
    }
    if args.server_address.is_some() {
        server_address = args.server_address.clone();
    }
    if server_address.is_none() && opts.node_port != 0 {
        server_address = Some(format!("0.0.0.0:{}", opts.node_port));
    }
    Ok((opts, server_address))
}

/// Runs the simulator until `shutdown` resolves.
pub async fn run(
    args: ControllerArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (opts, server_address) = options(&args)?;
    opts.validate().map_err(|e| anyhow::anyhow!(e))?;
    let cluster = connect(&args).await?;
    let cluster: Arc<dyn client::Cluster> = Arc::new(cluster);
    let sim = kwok::Simulator::start(cluster.clone(), opts)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(address) = server_address {
        let kubelet = kwok::kubelet::Kubelet::start(cluster.clone(), &sim);
        tokio::spawn(async move {
            if let Err(e) = kubelet.serve(&address).await {
                tracing::error!("{e:#}");
                std::process::exit(1);
            }
        });
    }
    tracing::info!("kwok simulator started");
    shutdown.await;
    tracing::info!("shutting down");
    Ok(())
}
