//! Service IP and node port allocation, as kube-apiserver's service registry does it: a cluster
//! IP from the service CIDR for every service but `ExternalName` and headless ones, a node port
//! for every port of `NodePort` and `LoadBalancer` services, both kept across updates (the
//! cluster IP may not change once set) and checked against what other services hold.
//!
//! What is taken is read from the store on first use and kept current by this server's own
//! writes. Addresses are picked at random, so servers sharing a store rarely pick the same one;
//! a requested address that looks taken is checked against the store again before refusing it,
//! which also frees addresses of services deleted in the meantime.

use std::{
    collections::HashSet,
    net::Ipv4Addr,
    ops::RangeInclusive,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};
use store::Store;

use crate::{errors::Cause, objects::JsonAt};

/// The service CIDR (`--service-cluster-ip-range`), as kubeadm and kind default it.
const SERVICE_NETWORK: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 0);
const SERVICE_PREFIX: u32 = 12;
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
/// `--service-node-port-range`.
const NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

#[derive(Default)]
struct Taken {
    ips: HashSet<Ipv4Addr>,
    node_ports: HashSet<u16>,
}

impl Taken {
    fn add(&mut self, other: &Taken) {
        self.ips.extend(&other.ips);
        self.node_ports.extend(&other.node_ports);
    }

    fn remove(&mut self, other: &Taken) {
        for ip in &other.ips {
            self.ips.remove(ip);
        }
        for port in &other.node_ports {
            self.node_ports.remove(port);
        }
    }

    /// What `self` holds and `other` does not.
    fn without(&self, other: &Taken) -> Taken {
        Taken {
            ips: self.ips.difference(&other.ips).copied().collect(),
            node_ports: self
                .node_ports
                .difference(&other.node_ports)
                .copied()
                .collect(),
        }
    }
}

#[derive(Default)]
struct State {
    /// What stored services hold; `None` until read from the store.
    stored: Option<Taken>,
    /// What writes in flight have picked and not yet stored.
    pending: Taken,
}

impl State {
    fn taken(&self) -> Taken {
        let mut taken = Taken::default();
        if let Some(stored) = &self.stored {
            taken.add(stored);
        }
        taken.add(&self.pending);
        taken
    }
}

/// What services hold.
#[derive(Default)]
pub struct ServiceAllocations {
    state: Mutex<State>,
}

/// Addresses a write picked: held as pending until [`Reservation::commit`] after the write is
/// stored; dropped without it (failed write, dry run), they are free again.
pub struct Reservation<'a> {
    owner: &'a ServiceAllocations,
    added: Taken,
    freed: Taken,
    committed: bool,
}

impl Reservation<'_> {
    /// The write is stored: what it picked is held, what it gave up is free.
    pub fn commit(mut self) {
        self.committed = true;
        let mut state = self.owner.state.lock().expect("not poisoned");
        state.pending.remove(&self.added);
        let stored = state.stored.get_or_insert_with(Taken::default);
        stored.remove(&self.freed);
        stored.add(&self.added);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let mut state = self.owner.state.lock().expect("not poisoned");
        state.pending.remove(&self.added);
    }
}

impl ServiceAllocations {
    /// Reads what every stored service holds, unless already known and `force` is false.
    pub async fn load(
        &self,
        store: &Arc<dyn Store>,
        prefix: &str,
        force: bool,
    ) -> store::Result<()> {
        if !force && self.state.lock().expect("not poisoned").stored.is_some() {
            return Ok(());
        }
        let mut taken = Taken::default();
        let mut start_after: Option<String> = None;
        loop {
            let page = store
                .range(prefix, start_after.as_deref(), 1000, None)
                .await?;
            for kv in &page.kvs {
                if let Ok(service) = serde_json::from_slice::<Value>(&kv.value) {
                    hold(&mut taken, &service);
                }
            }
            match (page.remaining, page.kvs.last()) {
                (remaining, Some(last)) if remaining > 0 => {
                    start_after = Some(last.key.to_string())
                }
                _ => break,
            }
        }
        self.state.lock().expect("not poisoned").stored = Some(taken);
        Ok(())
    }

    /// Whether a create or update asks for an address that looks taken, or needs one from a
    /// range that looks full (worth a fresh look at the store before refusing it).
    pub fn looks_taken(&self, service: &Value, old: Option<&Value>) -> bool {
        let state = self.state.lock().expect("not poisoned");
        if state.stored.is_none() {
            return false;
        }
        let taken = state.taken();
        let mut held = Taken::default();
        if let Some(old) = old {
            hold(&mut held, old);
        }
        let ip_taken = requested_ip(service)
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .is_some_and(|ip| taken.ips.contains(&ip) && !held.ips.contains(&ip));
        let ports_full = taken.node_ports.len() >= NODE_PORTS.len();
        ip_taken
            || ports_full
            || node_ports(service)
                .any(|port| taken.node_ports.contains(&port) && !held.node_ports.contains(&port))
    }

    /// Fills the cluster IP and node ports of a service being created (`old` = None) or
    /// updated. Returns what the write holds until it is stored, or what is wrong with it.
    pub fn allocate(
        &self,
        service: &mut Value,
        old: Option<&Value>,
    ) -> Result<Reservation<'_>, Vec<Cause>> {
        let mut state = self.state.lock().expect("not poisoned");
        let taken = state.taken();
        let mut held = Taken::default();
        if let Some(old) = old {
            hold(&mut held, old);
        }
        let mut causes = Vec::new();
        let mut new = Taken::default();
        allocate_cluster_ip(service, old, &taken, &held, &mut new, &mut causes);
        allocate_node_ports(service, old, &taken, &held, &mut new, &mut causes);
        if !causes.is_empty() {
            return Err(causes);
        }
        let added = new.without(&held);
        let freed = held.without(&new);
        state.pending.add(&added);
        Ok(Reservation {
            owner: self,
            added,
            freed,
            committed: false,
        })
    }

    /// Frees what a deleted service held.
    pub fn release(&self, service: &Value) {
        let mut state = self.state.lock().expect("not poisoned");
        let Some(stored) = state.stored.as_mut() else {
            return;
        };
        let mut held = Taken::default();
        hold(&mut held, service);
        stored.remove(&held);
    }
}

fn service_type(service: &Value) -> &str {
    service
        .at("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
}

fn requested_ip(service: &Value) -> Option<&str> {
    service
        .at("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            service
                .at("/spec/clusterIPs/0")
                .and_then(Value::as_str)
                .filter(|ip| !ip.is_empty())
        })
}

fn node_ports(service: &Value) -> impl Iterator<Item = u16> + '_ {
    service
        .at("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|port| port.get("nodePort")?.as_u64())
        .filter_map(|port| u16::try_from(port).ok())
}

/// Adds what a stored service holds.
fn hold(taken: &mut Taken, service: &Value) {
    if let Some(ip) = requested_ip(service).and_then(|ip| ip.parse().ok()) {
        taken.ips.insert(ip);
    }
    taken.node_ports.extend(node_ports(service));
}

fn in_service_network(ip: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - SERVICE_PREFIX);
    u32::from(ip) & mask == u32::from(SERVICE_NETWORK)
}

fn random_below(bound: u32) -> u32 {
    rand::random_range(0..bound)
}

fn allocate_cluster_ip(
    service: &mut Value,
    old: Option<&Value>,
    taken: &Taken,
    held: &Taken,
    new: &mut Taken,
    causes: &mut Vec<Cause>,
) {
    if service_type(service) == "ExternalName" {
        // Switching to ExternalName gives the cluster IP back.
        if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        return;
    }
    let old_ip = old
        .filter(|old| service_type(old) != "ExternalName")
        .and_then(requested_ip)
        .map(String::from);
    let ip = match (requested_ip(service), old_ip) {
        // An update that leaves the cluster IP out keeps it.
        (None, Some(old_ip)) => old_ip,
        (Some(ip), Some(old_ip)) if ip != old_ip => {
            causes.push(Cause {
                reason: "FieldValueInvalid",
                message: format!("Invalid value: []string{{{ip:?}}}: may not change once set"),
                field: "spec.clusterIPs[0]".into(),
            });
            return;
        }
        (Some(ip), Some(_)) => ip.to_owned(),
        (Some("None"), None) => "None".to_owned(),
        (Some(ip), None) => {
            let failed = |why: String| Cause {
                reason: "FieldValueInvalid",
                message: format!(
                    "Invalid value: []string{{{ip:?}}}: failed to allocate IP {ip}: {why}"
                ),
                field: "spec.clusterIPs".into(),
            };
            match ip.parse::<Ipv4Addr>() {
                Err(_) => causes.push(Cause {
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: {ip:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                    ),
                    field: "spec.clusterIPs[0]".into(),
                }),
                Ok(parsed) if !in_service_network(parsed) => causes.push(failed(format!(
                    "the provided IP ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
                ))),
                Ok(parsed) if taken.ips.contains(&parsed) && !held.ips.contains(&parsed) => {
                    causes.push(failed("provided IP is already allocated".into()))
                }
                Ok(_) => {}
            }
            if !causes.is_empty() {
                return;
            }
            ip.to_owned()
        }
        (None, None) => {
            let size = 1u32 << (32 - SERVICE_PREFIX);
            let base = u32::from(SERVICE_NETWORK);
            let start = random_below(size);
            // Skip the network and broadcast addresses, and the first one (the API server's).
            let found = (0..size)
                .map(|step| Ipv4Addr::from(base + (start + step) % size))
                .find(|ip| {
                    let offset = u32::from(*ip) - base;
                    offset > 1 && offset < size - 1 && !taken.ips.contains(ip)
                });
            match found {
                Some(ip) => ip.to_string(),
                None => {
                    causes.push(Cause {
                        reason: "FieldValueInvalid",
                        message: "Invalid value: []string{}: failed to allocate a serviceIP: range is full".into(),
                        field: "spec.clusterIPs".into(),
                    });
                    return;
                }
            }
        }
    };
    if let Ok(parsed) = ip.parse() {
        new.ips.insert(parsed);
    }
    let spec = &mut service["spec"];
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
}

fn allocate_node_ports(
    service: &mut Value,
    old: Option<&Value>,
    taken: &Taken,
    held: &Taken,
    new: &mut Taken,
    causes: &mut Vec<Cause>,
) {
    let kind = service_type(service).to_owned();
    let wants_node_ports = matches!(kind.as_str(), "NodePort" | "LoadBalancer");
    let old_ports: Vec<Value> = old
        .and_then(|old| old.at("/spec/ports"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(ports) = service["spec"]
        .get_mut("ports")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let range = u32::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
    // (port, protocol, node port) given so far: a TCP and a UDP entry of one port share theirs.
    let mut given: Vec<(Option<i64>, String, u16)> = Vec::new();
    for (index, port) in ports.iter_mut().enumerate() {
        let Some(port) = port.as_object_mut() else {
            continue;
        };
        let number = port.get("port").and_then(Value::as_i64);
        let protocol = port
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_owned();
        let requested = port.get("nodePort").and_then(Value::as_u64);
        if !wants_node_ports {
            // Switching away from NodePort gives back the node ports the update left as they were.
            let kept_from_old = requested.is_some()
                && old_ports
                    .iter()
                    .any(|o| o.get("nodePort") == port.get("nodePort"));
            if kept_from_old {
                port.remove("nodePort");
            } else if requested.is_some() {
                causes.push(Cause::forbidden(
                    format!("spec.ports[{index}].nodePort"),
                    format!("may not be used when `type` is '{kind}'"),
                ));
            }
            continue;
        }
        let node_port = match requested {
            Some(requested) => {
                let field = format!("spec.ports[{index}].nodePort");
                let valid = u16::try_from(requested)
                    .ok()
                    .filter(|port| NODE_PORTS.contains(port));
                match valid {
                    None => {
                        causes.push(Cause::invalid(
                            field,
                            &json!(requested),
                            format!(
                                "provided port is not in the valid range. The range of valid ports is {}-{}",
                                NODE_PORTS.start(),
                                NODE_PORTS.end()
                            ),
                        ));
                        continue;
                    }
                    Some(p)
                        if given
                            .iter()
                            .any(|(_, other, given)| *given == p && *other == protocol)
                            || (!new.node_ports.contains(&p)
                                && taken.node_ports.contains(&p)
                                && !held.node_ports.contains(&p)) =>
                    {
                        causes.push(Cause::invalid(
                            field,
                            &json!(requested),
                            "provided port is already allocated",
                        ));
                        continue;
                    }
                    Some(p) => p,
                }
            }
            None => {
                // The other protocol of a port shares its node port; an update that leaves a
                // port's nodePort out keeps the one it had.
                let shared = given
                    .iter()
                    .find(|(other, other_protocol, _)| {
                        *other == number && *other_protocol != protocol
                    })
                    .map(|(_, _, p)| *p);
                let kept = shared.or_else(|| {
                    old_ports
                        .iter()
                        .find(|o| {
                            o.get("port") == port.get("port")
                                && o.get("protocol").unwrap_or(&json!("TCP"))
                                    == port.get("protocol").unwrap_or(&json!("TCP"))
                        })
                        .and_then(|o| o.get("nodePort")?.as_u64())
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| !new.node_ports.contains(p))
                });
                match kept {
                    Some(p) => p,
                    None => {
                        let start = random_below(range);
                        let found = (0..range)
                            .map(|step| NODE_PORTS.start() + ((start + step) % range) as u16)
                            .find(|p| !new.node_ports.contains(p) && !taken.node_ports.contains(p));
                        match found {
                            Some(p) => p,
                            None => {
                                causes.push(Cause::invalid(
                                    format!("spec.ports[{index}].nodePort"),
                                    &json!(0),
                                    "failed to allocate a nodePort: range is full",
                                ));
                                continue;
                            }
                        }
                    }
                }
            }
        };
        new.node_ports.insert(node_port);
        given.push((number, protocol, node_port));
        port.insert("nodePort".into(), json!(node_port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(spec: Value) -> Value {
        json!({"metadata": {"name": "s"}, "spec": spec})
    }

    /// Allocates and commits, as a stored write does; the causes rendered on failure.
    fn stored(
        allocations: &ServiceAllocations,
        service: &mut Value,
        old: Option<&Value>,
    ) -> Vec<String> {
        match allocations.allocate(service, old) {
            Ok(reservation) => {
                reservation.commit();
                Vec::new()
            }
            Err(causes) => messages(&causes),
        }
    }

    fn messages(causes: &[Cause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn cluster_ips_are_allocated_once_and_kept() {
        let allocations = ServiceAllocations::default();
        let mut first = service(json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        assert!(stored(&allocations, &mut first, None).is_empty());
        let ip: Ipv4Addr = first["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(in_service_network(ip));
        assert_eq!(first["spec"]["clusterIPs"], json!([ip.to_string()]));
        assert!(first["spec"]["ports"][0].get("nodePort").is_none());

        // Asking for the same address again fails; an update that leaves it out keeps it.
        let mut second = service(json!({"clusterIP": ip.to_string()}));
        let causes = stored(&allocations, &mut second, None);
        assert_eq!(
            causes,
            [format!(
                "spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
            )]
        );
        let mut update = service(json!({"type": "ClusterIP"}));
        assert!(stored(&allocations, &mut update, Some(&first)).is_empty());
        assert_eq!(update["spec"]["clusterIP"], ip.to_string());
        let mut change = service(json!({"clusterIP": "10.96.7.7"}));
        let causes = stored(&allocations, &mut change, Some(&first));
        assert_eq!(
            causes,
            ["spec.clusterIPs[0]: Invalid value: []string{\"10.96.7.7\"}: may not change once set"]
        );

        // Once released, the address can be asked for.
        allocations.release(&first);
        assert!(stored(&allocations, &mut second, None).is_empty());
    }

    #[test]
    fn requested_addresses_are_checked() {
        let allocations = ServiceAllocations::default();
        let mut outside = service(json!({"clusterIP": "192.168.0.1"}));
        assert_eq!(
            stored(&allocations, &mut outside, None),
            [
                "spec.clusterIPs: Invalid value: []string{\"192.168.0.1\"}: failed to allocate IP 192.168.0.1: the provided IP (192.168.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
            ]
        );
        let mut headless = service(json!({"clusterIP": "None"}));
        assert!(stored(&allocations, &mut headless, None).is_empty());
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut external = service(json!({"type": "ExternalName", "externalName": "x.example"}));
        assert!(stored(&allocations, &mut external, None).is_empty());
        assert!(external["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn node_ports_are_allocated_for_node_port_services() {
        let allocations = ServiceAllocations::default();
        let mut web = service(json!({"type": "NodePort", "ports": [
            {"port": 80}, {"port": 443, "nodePort": 30443}
        ]}));
        assert!(stored(&allocations, &mut web, None).is_empty());
        let first = web["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!(NODE_PORTS.contains(&(first as u16)));
        assert_eq!(web["spec"]["ports"][1]["nodePort"], 30443);

        let mut other = service(json!({"type": "NodePort", "ports": [
            {"port": 80, "nodePort": 30443}, {"port": 81, "nodePort": 80}
        ]}));
        assert_eq!(
            stored(&allocations, &mut other, None),
            [
                "spec.ports[0].nodePort: Invalid value: 30443: provided port is already allocated",
                "spec.ports[1].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
            ]
        );

        // Updates keep node ports; switching to ClusterIP drops the ones left as they were.
        let mut same = service(json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}));
        assert!(stored(&allocations, &mut same, Some(&web)).is_empty());
        assert_eq!(same["spec"]["ports"][0]["nodePort"], first);
        let mut cluster_ip = web.clone();
        cluster_ip["spec"]["type"] = json!("ClusterIP");
        assert!(stored(&allocations, &mut cluster_ip, Some(&web)).is_empty());
        assert!(cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
        let mut reuse =
            service(json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 30443}]}));
        assert!(stored(&allocations, &mut reuse, None).is_empty());

        let mut forbidden =
            service(json!({"type": "ClusterIP", "ports": [{"port": 1, "nodePort": 31000}]}));
        assert_eq!(
            stored(&allocations, &mut forbidden, None),
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn uncommitted_reservations_hold_until_dropped() {
        let allocations = ServiceAllocations::default();
        let mut first = service(json!({"clusterIP": "10.96.1.1"}));
        let pending = allocations.allocate(&mut first, None).unwrap();
        // While the first write is in flight its address is taken.
        let mut second = service(json!({"clusterIP": "10.96.1.1"}));
        assert_eq!(stored(&allocations, &mut second, None).len(), 1);
        // The write failed (or was a dry run): the address is free again.
        drop(pending);
        assert!(stored(&allocations, &mut second, None).is_empty());

        // An update that fails keeps what the stored object holds.
        let mut web =
            service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30100}]}));
        assert!(stored(&allocations, &mut web, None).is_empty());
        let mut moved =
            service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30101}]}));
        drop(allocations.allocate(&mut moved, Some(&web)).unwrap());
        let mut thief =
            service(json!({"type": "NodePort", "ports": [{"port": 1, "nodePort": 30100}]}));
        assert_eq!(
            stored(&allocations, &mut thief, None),
            ["spec.ports[0].nodePort: Invalid value: 30100: provided port is already allocated"]
        );
    }

    #[test]
    fn both_protocols_of_a_port_share_its_node_port() {
        let allocations = ServiceAllocations::default();
        let mut dns = service(json!({"type": "NodePort", "ports": [
            {"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}
        ]}));
        assert!(stored(&allocations, &mut dns, None).is_empty());
        assert_eq!(
            dns["spec"]["ports"][0]["nodePort"],
            dns["spec"]["ports"][1]["nodePort"]
        );
        let mut explicit = service(json!({"type": "NodePort", "ports": [
            {"port": 54, "protocol": "UDP", "nodePort": 30054}, {"port": 54, "protocol": "TCP", "nodePort": 30054}
        ]}));
        assert!(stored(&allocations, &mut explicit, None).is_empty());
    }
}
