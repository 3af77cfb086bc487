//! `kwokctl port-forward <component> <localPort>:<port|portName>`: a TCP proxy from a local port
//! to a port of one of the cluster's components, until the process is interrupted.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;

use anyhow::{Context as _, anyhow, bail};

use crate::cli::PortForwardArgs;
use crate::config::Component;
use crate::context::Context;
use crate::runtime::{Cluster, RuntimeKind};

pub fn port_forward(ctx: &Context, args: &PortForwardArgs) -> anyhow::Result<()> {
    let (local, wanted) = parse_ports(&args.ports)?;
    let cluster = super::load_existing(ctx)?;
    let target = target_port(&cluster, &args.component, wanted)?;
    if ctx.dry_run {
        crate::dryrun::say(format!(
            "# Forward 127.0.0.1:{local} to 127.0.0.1:{target} ({})",
            args.component
        ));
        return Ok(());
    }
    let listener = TcpListener::bind(("127.0.0.1", local))
        .with_context(|| format!("listen on 127.0.0.1:{local}"))?;
    tracing::info!(
        component = %args.component,
        local = %listener.local_addr()?,
        target = target,
        "Port forwarding"
    );
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                thread::spawn(move || {
                    if let Err(e) = proxy(conn, target) {
                        tracing::debug!(err = %e, "Port forward connection ended");
                    }
                });
            }
            Err(e) => tracing::warn!(err = %e, "Failed to accept connection"),
        }
    }
    Ok(())
}

/// What the part after the colon names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wanted {
    Number(u32),
    Name(String),
}

/// Splits `<localPort>:<port|portName>`.
fn parse_ports(text: &str) -> anyhow::Result<(u16, Wanted)> {
    let unsupported = || anyhow!("unsupported port format: {text}");
    let (local, remote) = text.split_once(':').ok_or_else(unsupported)?;
    let local: u16 = local.parse().map_err(|_| unsupported())?;
    if remote.is_empty() || remote.contains(':') {
        return Err(unsupported());
    }
    let wanted = match remote.parse::<u32>() {
        Ok(n) => Wanted::Number(n),
        Err(_) => Wanted::Name(remote.to_string()),
    };
    Ok((local, wanted))
}

/// The host port behind a component's port. The embedded runtime runs the simulator inside the
/// API server process: its kubelet surface is `kwok-controller` when the cluster has one.
fn target_port(cluster: &Cluster, component: &str, wanted: Wanted) -> anyhow::Result<u16> {
    let embedded = RuntimeKind::parse(cluster.runtime_name()) == Some(RuntimeKind::Embedded);
    if embedded && component == "kwok-controller" {
        let port = cluster.config.options.kwok_controller_port;
        if port == 0 {
            bail!(
                "component \"kwok-controller\" of cluster {:?} serves no port: create the cluster with --controller-port",
                cluster.name
            );
        }
        let synthetic = Component {
            name: component.into(),
            ports: vec![crate::config::Port {
                name: "http".into(),
                port,
                host_port: port,
                protocol: "TCP".into(),
            }],
            ..Default::default()
        };
        return find_port(&synthetic, &wanted);
    }
    let found = cluster
        .config
        .component(component)
        .ok_or_else(|| anyhow!("component {component:?} not found"))?;
    find_port(found, &wanted)
}

fn find_port(component: &Component, wanted: &Wanted) -> anyhow::Result<u16> {
    let port = component.ports.iter().find(|p| match wanted {
        Wanted::Name(name) => &p.name == name,
        Wanted::Number(n) => p.port == *n || p.host_port == *n,
    });
    let Some(port) = port else {
        let shown = match wanted {
            Wanted::Name(n) => n.clone(),
            Wanted::Number(n) => n.to_string(),
        };
        bail!("port {shown:?} not found");
    };
    let host = if port.host_port != 0 {
        port.host_port
    } else {
        port.port
    };
    u16::try_from(host).map_err(|_| anyhow!("port {host} out of range"))
}

/// Copies bytes both ways until either side closes.
fn proxy(client: TcpStream, target: u16) -> io::Result<()> {
    let server = TcpStream::connect(("127.0.0.1", target))?;
    let (mut c_read, mut s_write) = (client.try_clone()?, server.try_clone()?);
    let upstream = thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let _ = io::copy(&mut s_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = upstream.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_formats() {
        assert_eq!(
            parse_ports("8080:http").unwrap(),
            (8080, Wanted::Name("http".into()))
        );
        assert_eq!(parse_ports("1:2").unwrap(), (1, Wanted::Number(2)));
        for bad in ["8080", "x:1", "8080:", "1:2:3", "70000:1"] {
            assert_eq!(
                parse_ports(bad).unwrap_err().to_string(),
                format!("unsupported port format: {bad}")
            );
        }
    }

    #[test]
    fn ports_by_name_or_number() {
        let c = Component {
            name: "kube-apiserver".into(),
            ports: vec![crate::config::Port {
                name: "https".into(),
                port: 6443,
                host_port: 32000,
                protocol: "TCP".into(),
            }],
            ..Default::default()
        };
        assert_eq!(find_port(&c, &Wanted::Name("https".into())).unwrap(), 32000);
        assert_eq!(find_port(&c, &Wanted::Number(6443)).unwrap(), 32000);
        assert_eq!(
            find_port(&c, &Wanted::Name("http".into()))
                .unwrap_err()
                .to_string(),
            "port \"http\" not found"
        );
    }
}
