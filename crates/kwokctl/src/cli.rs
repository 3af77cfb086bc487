//! The command tree and flags, mirroring upstream kwokctl.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kwokctl creates and manages local simulated Kubernetes clusters
#[derive(Debug, Parser)]
#[command(
    name = "kwokctl",
    version,
    about = "kwokctl creates and manages local simulated Kubernetes clusters",
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalFlags,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted anywhere on the command line.
#[derive(Debug, Clone, Args)]
pub struct GlobalFlags {
    /// cluster name
    #[arg(long, global = true, default_value = "kwok")]
    pub name: String,
    /// Print the command that would be executed, but do not execute it
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// config path [default: ~/.kwok/kwok.yaml]
    #[arg(short = 'c', long = "config", global = true, value_delimiter = ',')]
    pub config: Vec<String>,
    /// number for the log level verbosity (DEBUG, INFO, WARN, ERROR) or (-4, 0, 4, 8)
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        default_value = "INFO",
        allow_hyphen_values = true
    )]
    pub verbosity: String,
    /// the kwok program that serves embedded clusters [env: KWOK_KWOK_BINARY]
    #[arg(long, global = true)]
    pub kwok_binary: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates one of [cluster]
    #[command(subcommand)]
    Create(CreateCommand),
    /// Deletes one of [cluster]
    #[command(subcommand)]
    Delete(DeleteCommand),
    /// Start one of [cluster]
    #[command(subcommand)]
    Start(StartCommand),
    /// Stop one of [cluster]
    #[command(subcommand)]
    Stop(StopCommand),
    /// Gets one of [artifacts, clusters, components, kubeconfig]
    #[command(subcommand)]
    Get(GetCommand),
    /// Logs one of [audit, kube-apiserver, ...]
    Logs(LogsArgs),
    /// Scale a resource in cluster
    Scale(ScaleArgs),
    /// Snapshot [save, restore, replay, export] one of cluster
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Forward one local port to a port of a cluster component
    PortForward(PortForwardArgs),
    /// Exports one of [logs]
    #[command(subcommand)]
    Export(ExportCommand),
    /// Manage [reset, tidy, view, convert] default config
    #[command(subcommand)]
    Config(ConfigCommand),
    /// kubectl in cluster
    #[command(disable_help_flag = true)]
    Kubectl(PassthroughArgs),
    /// etcdctl in cluster
    #[command(disable_help_flag = true)]
    Etcdctl(PassthroughArgs),
    /// [experimental] Read and write the raw objects of the cluster's store
    #[command(subcommand)]
    Kectl(KectlCommand),
    /// Generate the autocompletion script for the specified shell
    Completion(CompletionArgs),
    /// Benchmark embedded clusters: create and delete times, then nodes Ready, pods Running and
    /// pods deleted at scale, next to upstream's gates
    #[command(hide = true)]
    Bench(BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Creates a cluster
    Cluster(Box<CreateClusterArgs>),
}

#[derive(Debug, Clone, Default, Args)]
pub struct CreateClusterArgs {
    /// Runtime of the cluster (embedded, binary, docker, podman, nerdctl, finch, lima, kind, kind-podman, kind-nerdctl, kind-lima, kind-finch)
    #[arg(long)]
    pub runtime: Option<String>,
    /// Port of the apiserver (default random)
    #[arg(long)]
    pub kube_apiserver_port: Option<u32>,
    /// Path to the kwok binary that serves the cluster (a local path)
    #[arg(long)]
    pub kwok_controller_binary: Option<String>,
    /// Binary of etcd, only for binary runtime (default: etcd on PATH)
    #[arg(long)]
    pub etcd_binary: Option<String>,
    /// Binary of kube-apiserver, only for binary runtime (default: kwok apiserver)
    #[arg(long)]
    pub kube_apiserver_binary: Option<String>,
    /// Binary of kube-controller-manager, only for binary runtime (default: kwok controller-manager)
    #[arg(long)]
    pub kube_controller_manager_binary: Option<String>,
    /// Binary of kube-scheduler, only for binary runtime (default: kwok controller-manager --controllers scheduler)
    #[arg(long)]
    pub kube_scheduler_binary: Option<String>,
    /// Port of etcd given to the host, only for binary runtime (default random)
    #[arg(long)]
    pub etcd_port: Option<u32>,
    /// Port of kwok-controller given to the host (its kubelet surface: logs, exec, attach,
    /// port-forward, metrics, health) (default random for the binary runtime, none for embedded)
    #[arg(long)]
    pub controller_port: Option<u32>,
    /// Prefix of the keys in etcd
    #[arg(long)]
    pub etcd_prefix: Option<String>,
    /// Enable a component: metrics-server (the resource metrics API, for kubectl top and
    /// autoscalers), prometheus, jaeger (host programs); kueue, kueueviz, jobset, lws,
    /// scheduler-plugins, descheduler, node-readiness-controller need a container runtime
    #[arg(long, value_delimiter = ',')]
    pub enable: Vec<String>,
    /// Disable a component, e.g. kube-scheduler or kube-controller-manager
    #[arg(long, value_delimiter = ',')]
    pub disable: Vec<String>,
    /// Enable the metrics-server (deprecated: use --enable metrics-server)
    #[arg(long)]
    pub enable_metrics_server: bool,
    /// Disable the kube-scheduler (deprecated: use --disable kube-scheduler)
    #[arg(long)]
    pub disable_kube_scheduler: bool,
    /// Disable the kube-controller-manager (deprecated: use --disable kube-controller-manager)
    #[arg(long)]
    pub disable_kube_controller_manager: bool,
    /// Enable authorization (RBAC) on the API server; `--kube-authorization=false` lets every
    /// authenticated request through (default true)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub kube_authorization: Option<bool>,
    /// A set of key=value pairs that describe command line arguments for a component, e.g. kube-apiserver=storage-sync=none
    #[arg(long)]
    pub extra_args: Vec<String>,
    /// Timeout for the whole creation, e.g. 30s (0 = no timeout)
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Wait for the cluster to be ready, e.g. 1m
    #[arg(long, default_value = "0s")]
    pub wait: String,
    /// The path to the kubeconfig file to add the kwok-<name> context to [default: ~/.kube/config]
    #[arg(long)]
    pub kubeconfig: Option<String>,
    #[command(flatten)]
    pub cluster: crate::cluster_options::ClusterFlags,
}

#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// Deletes a cluster
    Cluster(DeleteClusterArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct DeleteClusterArgs {
    /// The path to the kubeconfig file that will remove the deleted cluster [default: ~/.kube/config]
    #[arg(long)]
    pub kubeconfig: Option<String>,
    /// Delete all clusters managed by kwokctl
    #[arg(long)]
    pub all: bool,
    /// Force delete the cluster even if its runtime is not available
    #[arg(long)]
    pub force: bool,
    /// Copy the cluster's config, pki, logs and data into <DIR>/<name> before removing anything
    #[arg(long, value_name = "DIR")]
    pub backup: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StartCommand {
    /// Start a cluster
    Cluster(StartClusterArgs),
}

#[derive(Debug, Clone, Args)]
pub struct StartClusterArgs {
    /// Timeout for waiting for the cluster to be started
    #[arg(long, default_value = "0s")]
    pub timeout: String,
    /// Wait for the cluster to be ready
    #[arg(long, default_value = "0s")]
    pub wait: String,
}

#[derive(Debug, Subcommand)]
pub enum StopCommand {
    /// Stop a cluster
    Cluster,
}

#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// Gets all clusters
    Clusters(OutputArgs),
    /// Gets the components of the cluster
    Components(OutputArgs),
    /// Prints cluster kubeconfig
    Kubeconfig(GetKubeconfigArgs),
    /// Lists binaries or images used by cluster
    Artifacts(GetArtifactsArgs),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Name,
    Wide,
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "name")]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct GetKubeconfigArgs {
    /// Override host[:port] for kubeconfig
    #[arg(long, default_value = "")]
    pub host: String,
    /// Skip server certificate verification
    #[arg(long)]
    pub insecure_skip_tls_verify: bool,
    /// Signing certificate with the specified user if modified
    #[arg(long, default_value = "kwok-admin")]
    pub user: String,
    /// Signing certificate with the specified groups if modified
    #[arg(long, default_value = "system:masters", value_delimiter = ',')]
    pub group: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// The component whose logs to print
    pub component: String,
    /// Specify if the logs should be streamed
    #[arg(short = 'f', long)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Exports logs to a tempdir
    Logs(ExportLogsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ExportLogsArgs {
    /// Output directory (default <cluster dir>/export/logs)
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Display the current configuration
    View,
    /// Tidy the default configuration file (~/.kwok/kwok.yaml) from the loaded configuration
    Tidy,
    /// Remove the default configuration file (~/.kwok/kwok.yaml)
    Reset,
    /// Convert the given config files to the latest version
    Convert(ConfigConvertArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PassthroughArgs {
    /// Arguments passed through unchanged
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell to generate the script for
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// How many create/delete cycles to measure
    #[arg(long, default_value_t = 5)]
    pub iterations: usize,
    /// Node counts to scale to, in order, each timed until all nodes are Ready (empty: skip)
    #[arg(long, value_delimiter = ',', num_args = 0.., default_values_t = [1_000, 10_000])]
    pub nodes: Vec<usize>,
    /// Pod counts to scale to, in order, each timed until all pods are Running; then all are
    /// deleted (empty: skip)
    #[arg(long, value_delimiter = ',', num_args = 0.., default_values_t = [10_000, 100_000])]
    pub pods: Vec<usize>,
    /// After scaling up, also time `stop` + `start` and `kill -9` + `start` until every node is
    /// Ready and every pod Running again
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub restart: bool,
    /// Clusters created side by side: time to create them all, each asked for a namespace,
    /// their total memory once idle (RSS, private, PSS), then all deleted (0: skip)
    #[arg(long, default_value_t = 20)]
    pub clusters: usize,
    /// How many of those clusters are created at once (0: one per core)
    #[arg(long, default_value_t = 0)]
    pub clusters_at_once: usize,
    /// Pod lifecycles (create, bind, Running, delete) in a synthetic recording replayed with
    /// `snapshot replay --speed 100` into a fresh cluster (0: skip)
    #[arg(long, default_value_t = 10_000)]
    pub replay: usize,
    /// Pods bound to the one node of a fresh cluster by `scale pod --param
    /// '.nodeName="node-000000"'` (upstream KWOK's benchmark scenario), timed until all are
    /// Running, then deleted (0: skip)
    #[arg(long, default_value_t = 10_000)]
    pub one_node: usize,
    /// Instead of the scenario above, soak one cluster for this long (e.g. 1h): the last of
    /// --nodes heartbeating, pods churned between 0 and --soak-pods, RSS printed every minute
    #[arg(long, value_parser = crate::duration::parse)]
    pub soak: Option<std::time::Duration>,
    /// The pods created and deleted again in each churn cycle of --soak
    #[arg(long, default_value_t = 2_000)]
    pub soak_pods: usize,
    /// At most this many pods created per minute during --soak (0: as fast as the cluster
    /// goes), so that the load, and what it keeps in memory (events, watch history), does not
    /// follow whatever else the machine is doing
    #[arg(long, default_value_t = 10_000)]
    pub soak_pace: usize,
}

#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// The resource to scale: node, pod, or the name of a KwokctlResource from the config
    pub kind: String,
    /// The name of the scale: objects are named <name>-000000, ... (default: the resource name)
    #[arg(id = "scale_name", value_name = "NAME")]
    pub name: Option<String>,
    /// Number of replicas
    #[arg(long, default_value_t = 1)]
    pub replicas: u64,
    /// Length of the serial number in object names
    #[arg(long, default_value_t = 6)]
    pub serial_length: usize,
    /// Namespace of namespaced resources
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Parameter assignments, e.g. '.allocatable.cpu="64"' or '.nodeName="node-000000"'
    #[arg(long)]
    pub param: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save the snapshot of cluster
    Save(SnapshotSaveArgs),
    /// Restore the snapshot of cluster
    Restore(SnapshotRestoreArgs),
    /// Export the snapshot of any cluster (read through its kubeconfig) in the k8s format
    Export(SnapshotExportArgs),
    /// Replay a recording (`snapshot export --record`) into the cluster
    Replay(SnapshotReplayArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotSaveArgs {
    /// Path to the snapshot
    #[arg(long, default_value = "")]
    pub path: String,
    /// Format of the snapshot file (etcd, k8s)
    #[arg(long, default_value = "etcd")]
    pub format: String,
    /// Filter the resources to save, only support for k8s format
    #[arg(long, value_delimiter = ',')]
    pub filter: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotRestoreArgs {
    /// Path to the snapshot
    #[arg(long, default_value = "")]
    pub path: String,
    /// Format of the snapshot file (etcd, k8s)
    #[arg(long, default_value = "etcd")]
    pub format: String,
    /// Filter the resources to restore, only support for k8s format
    #[arg(long, value_delimiter = ',')]
    pub filter: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotExportArgs {
    /// Path to the snapshot
    #[arg(long, default_value = "")]
    pub path: String,
    /// The kubeconfig of the cluster to export [default: ~/.kube/config]
    #[arg(long)]
    pub kubeconfig: Option<String>,
    /// The context to use (default: the current context)
    #[arg(long)]
    pub context: Option<String>,
    /// Filter the resources to export
    #[arg(long, value_delimiter = ',')]
    pub filter: Vec<String>,
    /// Objects per list request
    #[arg(long, default_value_t = 500)]
    pub page_size: usize,
    /// Define the number of pages to buffer
    #[arg(long, default_value_t = 10)]
    pub page_buffer_size: i32,
    /// Username to impersonate for the operation. User could be a regular user or a service account in a namespace.
    #[arg(long = "as", default_value = "")]
    pub as_user: String,
    /// Group to impersonate for the operation, this flag can be repeated to specify multiple groups.
    #[arg(long = "as-group", value_delimiter = ',')]
    pub as_group: Vec<String>,
    /// Record the change of the cluster: after the export, keep watching and append each change
    /// until interrupted
    #[arg(long)]
    pub record: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SnapshotReplayArgs {
    /// Path to the recording
    #[arg(long, default_value = "")]
    pub path: String,
    /// Only restore the snapshot
    #[arg(long)]
    pub snapshot: bool,
    /// Play the changes this many times faster than they were recorded (0: as fast as possible)
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

#[derive(Debug, Clone, Args)]
pub struct GetArtifactsArgs {
    /// Runtime of the cluster
    #[arg(long, default_value = "")]
    pub runtime: String,
    /// Filter the list of (binary or image)
    #[arg(long, default_value = "")]
    pub filter: String,
}

#[derive(Debug, Clone, Args)]
pub struct PortForwardArgs {
    /// The component to forward to (e.g. kube-apiserver, kwok-controller, etcd)
    pub component: String,
    /// <localPort>:<port|portName>
    pub ports: String,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigConvertArgs {
    /// The config files to convert
    pub files: Vec<PathBuf>,
    /// Write the result back to each file instead of stdout
    #[arg(short = 'w', long)]
    pub write: bool,
}

#[derive(Debug, Subcommand)]
pub enum KectlCommand {
    /// Print the stored objects of a resource, by their store keys
    Get(KectlGetArgs),
    /// Write an object (from a file or stdin) under its store key
    Put(KectlPutArgs),
    /// Delete the stored objects of a resource
    Delete(KectlGetArgs),
    /// Save or restore the store (`snapshot save|restore --format etcd`)
    #[command(subcommand)]
    Snapshot(KectlSnapshotCommand),
}

#[derive(Debug, Clone, Args)]
pub struct KectlGetArgs {
    /// The resource: a kubectl word (pod, deployment.apps, ...)
    pub resource: String,
    /// The object's name (all objects when absent)
    #[arg(id = "object_name", value_name = "NAME")]
    pub name: Option<String>,
    /// Namespace of namespaced resources (default: all namespaces)
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format: json, yaml or key
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: String,
}

#[derive(Debug, Clone, Args)]
pub struct KectlPutArgs {
    /// The file holding the object(s), `-` for stdin
    #[arg(short = 'f', long, default_value = "-")]
    pub filename: String,
}

#[derive(Debug, Subcommand)]
pub enum KectlSnapshotCommand {
    /// Save the store to a file
    Save(KectlSnapshotArgs),
    /// Restore the store from a file
    Restore(KectlSnapshotArgs),
}

#[derive(Debug, Clone, Args)]
pub struct KectlSnapshotArgs {
    /// Path to the snapshot
    pub path: String,
}
