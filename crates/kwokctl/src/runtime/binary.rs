//! The components of a cluster of the `binary` runtime: upstream's host processes `etcd` →
//! `kube-apiserver` → `kube-controller-manager`, `kube-scheduler` → `kwok-controller`. etcd is
//! always the real etcd; the others are served by `kwok` (`kwok apiserver`, `kwok
//! controller-manager`, `kwok`) unless upstream's binary of that component is configured.

use std::path::{Path, PathBuf};

use crate::cluster_options::{self, Server};
use crate::config::{Component, Options, Port};
use crate::context::Context;
use crate::paths::ClusterPaths;

pub const ETCD: &str = "etcd";
pub const KUBE_APISERVER: &str = "kube-apiserver";
pub const KUBE_CONTROLLER_MANAGER: &str = "kube-controller-manager";
pub const KUBE_SCHEDULER: &str = "kube-scheduler";
pub const KWOK_CONTROLLER: &str = "kwok-controller";

/// `--quota-backend-bytes` of etcd: upstream's default `etcdQuotaBackendSize` of 8Gi.
const ETCD_QUOTA_BACKEND_BYTES: u64 = 8 << 30;

/// The programs that run the components.
#[derive(Debug, Clone)]
pub struct Programs {
    pub etcd: PathBuf,
    /// `kwok`, for every component without an upstream binary.
    pub kwok: PathBuf,
    pub kube_apiserver: Option<PathBuf>,
    pub kube_controller_manager: Option<PathBuf>,
    pub kube_scheduler: Option<PathBuf>,
}

/// The host ports of a cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ports {
    pub etcd: u16,
    pub etcd_peer: u16,
    pub kube_apiserver: u16,
    pub kwok_controller: u16,
    /// Only used by upstream's kube-controller-manager.
    pub kube_controller_manager: u16,
    /// Only used by upstream's kube-scheduler.
    pub kube_scheduler: u16,
}

/// Finds the programs a new cluster needs. The error says which one is missing and how to
/// provide it.
pub fn resolve_programs(ctx: &Context, options: &Options) -> Result<Programs, String> {
    let etcd = match local_path(ctx, "etcd", &options.etcd_binary)? {
        Some(path) => path,
        None => ctx.find_in_path("etcd").ok_or_else(|| {
            "etcd binary not found: pass --etcd-binary, set KWOK_ETCD_BINARY, or put etcd on PATH"
                .to_string()
        })?,
    };
    Ok(Programs {
        etcd,
        kwok: ctx.kwok_binary(Some(&options.kwok_controller_binary))?,
        kube_apiserver: local_path(ctx, KUBE_APISERVER, &options.kube_apiserver_binary)?,
        kube_controller_manager: local_path(
            ctx,
            KUBE_CONTROLLER_MANAGER,
            &options.kube_controller_manager_binary,
        )?,
        kube_scheduler: local_path(ctx, KUBE_SCHEDULER, &options.kube_scheduler_binary)?,
    })
}

/// A configured binary: `None` when not configured, an error when it is a URL (kwokctl does
/// not download) or not an executable file.
pub fn local_path(ctx: &Context, component: &str, value: &str) -> Result<Option<PathBuf>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.contains("://") {
        return Err(format!(
            "binary {value} of {component} is a URL; kwokctl does not download binaries, pass a local path"
        ));
    }
    let path = ctx.env.expand(value);
    let path = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .map(|dir| dir.join(&path))
            .unwrap_or(path)
    };
    if crate::context::is_executable(&path) {
        Ok(Some(path))
    } else {
        Err(format!(
            "binary {} of {component} is not an executable file",
            path.display()
        ))
    }
}

/// How many host ports [`components`] needs.
pub const PORT_COUNT: usize = 6;

impl Ports {
    /// Fills the ports that are not fixed from `free`, a list of at least [`PORT_COUNT`]
    /// distinct free ports.
    pub fn assign(options: &Options, free: &[u16]) -> Ports {
        let mut free = free.iter().copied();
        let mut pick = |fixed: u32| -> u16 {
            u16::try_from(fixed)
                .ok()
                .filter(|p| *p != 0)
                .unwrap_or_else(|| free.next().unwrap_or_default())
        };
        Ports {
            etcd: pick(options.etcd_port),
            etcd_peer: pick(options.etcd_peer_port),
            kube_apiserver: pick(options.kube_apiserver_port),
            kwok_controller: pick(options.kwok_controller_port),
            kube_controller_manager: pick(options.kube_controller_manager_port),
            kube_scheduler: pick(options.kube_scheduler_port),
        }
    }

    /// Records the ports in the options, so `kwok.yaml` shows them.
    pub fn record(&self, options: &mut Options) {
        options.etcd_port = u32::from(self.etcd);
        options.etcd_peer_port = u32::from(self.etcd_peer);
        options.kube_apiserver_port = u32::from(self.kube_apiserver);
        options.kwok_controller_port = u32::from(self.kwok_controller);
        options.kube_controller_manager_port = u32::from(self.kube_controller_manager);
        options.kube_scheduler_port = u32::from(self.kube_scheduler);
    }
}

/// The components of a cluster, in start order; `extra_args` are `(component, --flag=value)`.
pub fn components(
    paths: &ClusterPaths,
    options: &Options,
    programs: &Programs,
    ports: &Ports,
    extra_args: &[(String, String)],
) -> Vec<Component> {
    let pki = pki::PkiPaths::new(paths.pki());
    let kubeconfig = paths.kubeconfig();
    let flag = |name: &str, value: &dyn std::fmt::Display| format!("--{name}={value}");
    let path = |p: &Path| p.display().to_string();
    let etcd_url = |port: u16| format!("http://127.0.0.1:{port}");
    let mut out = Vec::new();

    out.push(component(
        ETCD,
        &[],
        &programs.etcd,
        vec![
            flag("name", &"node0"),
            flag("auto-compaction-retention", &1),
            flag(
                "quota-backend-bytes",
                &cluster_options::parse_quantity(&options.cluster.etcd_quota_backend_size)
                    .unwrap_or(ETCD_QUOTA_BACKEND_BYTES),
            ),
            flag("data-dir", &path(&paths.etcd())),
            flag("initial-advertise-peer-urls", &etcd_url(ports.etcd_peer)),
            flag("listen-peer-urls", &etcd_url(ports.etcd_peer)),
            flag("advertise-client-urls", &etcd_url(ports.etcd)),
            flag("listen-client-urls", &etcd_url(ports.etcd)),
            flag(
                "initial-cluster",
                &format!("node0={}", etcd_url(ports.etcd_peer)),
            ),
        ],
        vec![port("http", ports.etcd), port("peer-http", ports.etcd_peer)],
    ));

    let tls = [
        flag("tls-cert-file", &path(&pki.serving_cert())),
        flag("tls-private-key-file", &path(&pki.serving_key())),
        flag("client-ca-file", &path(&pki.ca_cert())),
    ];
    let apiserver = match &programs.kube_apiserver {
        Some(binary) => {
            let mut args = vec![
                flag("etcd-prefix", &options.etcd_prefix),
                flag("etcd-servers", &etcd_url(ports.etcd)),
                "--allow-privileged=true".into(),
                "--endpoint-reconciler-type=none".into(),
                if options.kube_authorization == Some(false) {
                    "--authorization-mode=AlwaysAllow".into()
                } else {
                    "--authorization-mode=Node,RBAC".into()
                },
                flag("bind-address", &"127.0.0.1"),
                flag("secure-port", &ports.kube_apiserver),
            ];
            args.extend(tls.iter().cloned());
            args.extend([
                flag("service-account-key-file", &path(&pki.admin_key())),
                flag("service-account-signing-key-file", &path(&pki.admin_key())),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            ]);
            args.extend(cluster_options::apiserver_args(
                options,
                paths,
                Server::Upstream,
            ));
            component(
                KUBE_APISERVER,
                &[ETCD],
                binary,
                args,
                vec![port("https", ports.kube_apiserver)],
            )
        }
        None => {
            let mut args = vec![
                "apiserver".into(),
                flag("etcd-servers", &etcd_url(ports.etcd)),
                flag("etcd-prefix", &options.etcd_prefix),
                flag("bind-address", &"127.0.0.1"),
                flag("secure-port", &ports.kube_apiserver),
            ];
            args.extend(tls.iter().cloned());
            args.push(flag(
                "service-account-signing-key-file",
                &path(&pki.service_account_key()),
            ));
            if options.kube_authorization == Some(false) {
                args.push("--authorization-mode=AlwaysAllow".into());
            }
            // kube-controller-manager and kube-scheduler run the controllers.
            args.push("--controllers=".into());
            args.extend(cluster_options::apiserver_args(
                options,
                paths,
                Server::Kwok,
            ));
            component(
                KUBE_APISERVER,
                &[ETCD],
                &programs.kwok,
                args,
                vec![port("https", ports.kube_apiserver)],
            )
        }
    };
    out.push(apiserver);

    if !options.is_disabled(KUBE_CONTROLLER_MANAGER) {
        out.push(match &programs.kube_controller_manager {
            Some(binary) => component(
                KUBE_CONTROLLER_MANAGER,
                &[KUBE_APISERVER],
                binary,
                [
                    cluster_options::node_monitor_args(options),
                    vec![
                        flag("kubeconfig", &path(&kubeconfig)),
                        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"
                            .into(),
                        flag("bind-address", &"127.0.0.1"),
                        flag("secure-port", &ports.kube_controller_manager),
                        flag("root-ca-file", &path(&pki.ca_cert())),
                        flag("service-account-private-key-file", &path(&pki.admin_key())),
                    ],
                    cluster_options::client_qps_args(options),
                ]
                .concat(),
                vec![port("https", ports.kube_controller_manager)],
            ),
            None => component(
                KUBE_CONTROLLER_MANAGER,
                &[KUBE_APISERVER],
                &programs.kwok,
                [
                    vec![
                        "controller-manager".into(),
                        flag("kubeconfig", &path(&kubeconfig)),
                        // Scheduling belongs to kube-scheduler, even when that one is disabled.
                        "--controllers=*,-scheduler".into(),
                        flag("root-ca-file", &path(&pki.ca_cert())),
                    ],
                    cluster_options::node_monitor_args(options),
                ]
                .concat(),
                Vec::new(),
            ),
        });
    }

    if !options.is_disabled(KUBE_SCHEDULER) {
        out.push(match &programs.kube_scheduler {
            Some(binary) => component(
                KUBE_SCHEDULER,
                &[KUBE_APISERVER],
                binary,
                [
                    vec![flag("kubeconfig", &path(&kubeconfig))],
                    cluster_options::scheduler_config_args(options, paths, "config"),
                    vec![
                        "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics"
                            .into(),
                        flag("bind-address", &"127.0.0.1"),
                        flag("secure-port", &ports.kube_scheduler),
                    ],
                    cluster_options::client_qps_args(options),
                ]
                .concat(),
                vec![port("https", ports.kube_scheduler)],
            ),
            None => component(
                KUBE_SCHEDULER,
                &[KUBE_APISERVER],
                &programs.kwok,
                [
                    vec![
                        "controller-manager".into(),
                        flag("kubeconfig", &path(&kubeconfig)),
                        "--controllers=scheduler".into(),
                    ],
                    cluster_options::scheduler_config_args(options, paths, "scheduler-config"),
                ]
                .concat(),
                Vec::new(),
            ),
        });
    }

    if !options.is_disabled(KWOK_CONTROLLER) {
        let mut args = vec![
            "--manage-all-nodes=true".into(),
            flag("kubeconfig", &path(&kubeconfig)),
            flag("config", &path(&paths.config())),
            flag(
                "server-address",
                &format!("127.0.0.1:{}", ports.kwok_controller),
            ),
            // Nodes advertise this server as their kubelet, so the API server reaches it
            // for logs, exec, attach and port-forward.
            "--node-name=localhost".into(),
            flag("node-port", &ports.kwok_controller),
        ];
        args.extend(cluster_options::simulator_args(options));
        out.push(component(
            KWOK_CONTROLLER,
            &[KUBE_APISERVER],
            &programs.kwok,
            args,
            vec![port("http", ports.kwok_controller)],
        ));
    }

    for c in &mut out {
        c.args.extend(
            extra_args
                .iter()
                .filter(|(name, _)| *name == c.name)
                .map(|(_, arg)| arg.clone()),
        );
        c.work_dir = path(&paths.dir);
    }
    out
}

fn component(
    name: &str,
    links: &[&str],
    binary: &Path,
    args: Vec<String>,
    ports: Vec<Port>,
) -> Component {
    Component {
        name: name.into(),
        links: links.iter().map(|l| l.to_string()).collect(),
        binary: binary.display().to_string(),
        args,
        ports,
        ..Default::default()
    }
}

fn port(name: &str, port: u16) -> Port {
    Port {
        name: name.into(),
        port: u32::from(port),
        host_port: u32::from(port),
        protocol: "TCP".into(),
    }
}

/// The first port of `component`, as the host reaches it.
pub fn host_port(component: &Component) -> Option<u16> {
    component.ports.iter().find_map(reachable)
}

fn reachable(port: &Port) -> Option<u16> {
    let p = if port.host_port != 0 {
        port.host_port
    } else {
        port.port
    };
    u16::try_from(p).ok().filter(|p| *p != 0)
}

/// The etcd client port of a cluster: `options.etcdPort`, else the etcd component's port named
/// `http`, else its first port.
pub fn etcd_port(options: &Options, components: &[Component]) -> Option<u16> {
    if let Some(port) = u16::try_from(options.etcd_port).ok().filter(|p| *p != 0) {
        return Some(port);
    }
    let etcd = components.iter().find(|c| c.name == ETCD)?;
    etcd.ports
        .iter()
        .filter(|p| p.name == "http")
        .find_map(reachable)
        .or_else(|| host_port(etcd))
}

/// An etcd tool (`etcdctl`, `etcdutl`): the one beside the cluster's etcd binary, else the one
/// on `PATH`, else the bare name (so the error names it).
pub fn etcd_tool(ctx: &Context, components: &[Component], tool: &str) -> PathBuf {
    let beside_etcd = components
        .iter()
        .find(|c| c.name == ETCD && !c.binary.is_empty())
        .and_then(|c| ctx.env.expand(&c.binary).parent().map(|dir| dir.join(tool)))
        .filter(|path| crate::context::is_executable(path));
    beside_etcd
        .or_else(|| ctx.find_in_path(tool))
        .unwrap_or_else(|| tool.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs() -> Programs {
        Programs {
            etcd: "/usr/bin/etcd".into(),
            kwok: "/bin/kwok".into(),
            kube_apiserver: None,
            kube_controller_manager: None,
            kube_scheduler: None,
        }
    }

    fn ports() -> Ports {
        Ports {
            etcd: 2001,
            etcd_peer: 2002,
            kube_apiserver: 2003,
            kwok_controller: 2004,
            kube_controller_manager: 2005,
            kube_scheduler: 2006,
        }
    }

    fn options() -> Options {
        Options {
            etcd_prefix: "/registry".into(),
            ..Default::default()
        }
    }

    #[test]
    fn default_components_in_start_order() {
        let paths = ClusterPaths::new("/w/clusters/a");
        let list = components(&paths, &options(), &programs(), &ports(), &[]);
        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                ETCD,
                KUBE_APISERVER,
                KUBE_CONTROLLER_MANAGER,
                KUBE_SCHEDULER,
                KWOK_CONTROLLER
            ]
        );
        let etcd = list[0].args.join(" ");
        assert!(etcd.contains("--data-dir=/w/clusters/a/etcd"), "{etcd}");
        assert!(etcd.contains("--listen-client-urls=http://127.0.0.1:2001"));
        let apiserver = &list[1];
        assert_eq!(apiserver.binary, "/bin/kwok");
        assert_eq!(apiserver.links, ["etcd"]);
        let args = apiserver.args.join(" ");
        assert!(args.starts_with("apiserver "), "{args}");
        assert!(args.contains("--etcd-servers=http://127.0.0.1:2001"));
        assert!(args.contains("--etcd-prefix=/registry"));
        assert!(args.contains("--secure-port=2003"));
        assert!(
            list[2]
                .args
                .contains(&"--controllers=*,-scheduler".to_string())
        );
        assert!(
            list[3]
                .args
                .contains(&"--controllers=scheduler".to_string())
        );
        assert!(
            list[4]
                .args
                .contains(&"--config=/w/clusters/a/kwok.yaml".to_string())
        );
        assert_eq!(etcd_port(&Options::default(), &list), Some(2001));
    }

    #[test]
    fn disabled_and_upstream_components() {
        let paths = ClusterPaths::new("/w/clusters/a");
        let mut options = options();
        options.disable = vec![KUBE_SCHEDULER.into()];
        options.disable_kube_controller_manager = true;
        let mut programs = programs();
        programs.kube_apiserver = Some("/opt/kube-apiserver".into());
        let list = components(
            &paths,
            &options,
            &programs,
            &ports(),
            &[(KUBE_APISERVER.into(), "--v=4".into())],
        );
        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [ETCD, KUBE_APISERVER, KWOK_CONTROLLER]);
        assert_eq!(list[1].binary, "/opt/kube-apiserver");
        assert!(
            list[1]
                .args
                .contains(&"--endpoint-reconciler-type=none".into())
        );
        assert_eq!(list[1].args.last().unwrap(), "--v=4");
    }

    #[test]
    fn fixed_ports_win_over_free_ones() {
        let options = Options {
            etcd_port: 7000,
            ..Default::default()
        };
        let ports = Ports::assign(&options, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(ports.etcd, 7000);
        assert_eq!(ports.etcd_peer, 1);
        assert_eq!(ports.kube_apiserver, 2);
    }
}
