//! Authorization with kube-apiserver's RBAC rule semantics. Roles, ClusterRoles and their
//! bindings are held in memory, indexed by subject, and kept current by watching them, so a
//! decision reads no storage. `system:masters` is allowed everything without consulting RBAC.
//! The bootstrap roles and bindings of kube-apiserver 1.33 are created at start
//! (`bootstrap.yaml`); aggregated ClusterRoles are filled by the aggregation controller.

pub mod attributes;
pub mod follow;
pub mod rules;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

pub use attributes::Attributes;
pub use follow::follow;
pub use rules::Rule;

use crate::authn::{MASTERS, SERVICE_ACCOUNT_PREFIX, UserInfo};

/// The bootstrap policy, one object per YAML document.
pub const BOOTSTRAP: &str = include_str!("bootstrap.yaml");

/// What a binding grants: the role it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Grant {
    binding: String,
    /// `Role` or `ClusterRole`.
    role_kind: String,
    role: String,
    /// The subject as kube-apiserver names it in its reasons (`User "x"`).
    subject: String,
}

/// Bindings of one scope (cluster, or one namespace) by subject key (`u:<user>`, `g:<group>`).
#[derive(Default)]
struct Bindings {
    by_name: HashMap<String, Value>,
    by_subject: HashMap<String, Vec<Grant>>,
}

impl Bindings {
    fn put(&mut self, name: &str, binding: Value, namespace: &str) {
        self.by_name.insert(name.to_string(), binding);
        self.reindex(namespace);
    }

    fn remove(&mut self, name: &str, namespace: &str) {
        if self.by_name.remove(name).is_some() {
            self.reindex(namespace);
        }
    }

    fn reindex(&mut self, namespace: &str) {
        self.by_subject.clear();
        for (name, b) in &self.by_name {
            let role_kind = b["roleRef"]["kind"].as_str().unwrap_or("").to_string();
            let role = b["roleRef"]["name"].as_str().unwrap_or("").to_string();
            for subject in b["subjects"].as_array().into_iter().flatten() {
                let Some((key, described)) = subject_key(subject, namespace) else {
                    continue;
                };
                self.by_subject.entry(key).or_default().push(Grant {
                    binding: name.clone(),
                    role_kind: role_kind.clone(),
                    role: role.clone(),
                    subject: described,
                });
            }
        }
    }
}

/// `u:<name>` or `g:<group>` for a binding subject, and how reasons name it.
fn subject_key(subject: &Value, binding_namespace: &str) -> Option<(String, String)> {
    let name = subject["name"].as_str()?;
    match subject["kind"].as_str()? {
        "User" => Some((format!("u:{name}"), format!("User {name:?}"))),
        "Group" => Some((format!("g:{name}"), format!("Group {name:?}"))),
        "ServiceAccount" => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            Some((
                format!("u:{SERVICE_ACCOUNT_PREFIX}{ns}:{name}"),
                format!("ServiceAccount {:?}", format!("{name}/{ns}")),
            ))
        }
        _ => None,
    }
}

fn subject_keys(user: &UserInfo) -> Vec<String> {
    std::iter::once(format!("u:{}", user.name))
        .chain(user.groups.iter().map(|g| format!("g:{g}")))
        .collect()
}

#[derive(Default)]
struct Policy {
    cluster_roles: HashMap<String, Vec<Rule>>,
    /// `(namespace, name)` → rules.
    roles: HashMap<(String, String), Vec<Rule>>,
    cluster_bindings: Bindings,
    bindings: HashMap<String, Bindings>,
}

/// A decision and kube-apiserver's reason for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Decisions are remembered until the policy changes; past this many the memory starts over.
const CACHED_DECISIONS: usize = 65_536;

/// The in-memory RBAC policy of the cluster.
#[derive(Default)]
pub struct Authorizer {
    policy: RwLock<Policy>,
    /// Decisions since the last policy change, by everything RBAC looks at. A user's grants
    /// are walked once per distinct request shape, not once per request.
    decisions: RwLock<HashMap<[u8; 32], Decision>>,
    /// Off (`--authorization-mode=AlwaysAllow`): every request is allowed.
    pub always_allow: std::sync::atomic::AtomicBool,
}

/// What a decision depends on, as a SHA-256 digest (bounded whatever names and paths a client
/// sends).
fn decision_key(a: &Attributes) -> [u8; 32] {
    let mut key = String::with_capacity(128);
    for part in [
        a.user.name.as_str(),
        &a.verb,
        &a.namespace,
        &a.api_group,
        &a.resource,
        &a.subresource,
        &a.name,
        if a.resource_request { "" } else { &a.path },
    ] {
        key.push_str(part);
        key.push('\0');
    }
    for g in &a.user.groups {
        key.push_str(g);
        key.push('\0');
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    digest.as_ref().try_into().expect("32 bytes")
}

/// The four RBAC kinds, as the cache files them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Role,
        Kind::ClusterRole,
        Kind::RoleBinding,
        Kind::ClusterRoleBinding,
    ];

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Role => "roles",
            Kind::ClusterRole => "clusterroles",
            Kind::RoleBinding => "rolebindings",
            Kind::ClusterRoleBinding => "clusterrolebindings",
        }
    }
}

fn meta<'a>(o: &'a Value, field: &str) -> &'a str {
    o["metadata"][field].as_str().unwrap_or("")
}

impl Authorizer {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Files an object that was created or changed.
    pub fn put(&self, kind: Kind, object: &Value) {
        let (ns, name) = (meta(object, "namespace"), meta(object, "name"));
        let mut p = self.policy.write().unwrap();
        self.decisions.write().unwrap().clear();
        match kind {
            Kind::ClusterRole => {
                p.cluster_roles
                    .insert(name.to_string(), rules::parse_all(&object["rules"]));
            }
            Kind::Role => {
                p.roles.insert(
                    (ns.to_string(), name.to_string()),
                    rules::parse_all(&object["rules"]),
                );
            }
            Kind::ClusterRoleBinding => p.cluster_bindings.put(name, object.clone(), ""),
            Kind::RoleBinding => {
                p.bindings
                    .entry(ns.to_string())
                    .or_default()
                    .put(name, object.clone(), ns)
            }
        }
    }

    /// Forgets a deleted object.
    pub fn remove(&self, kind: Kind, object: &Value) {
        let (ns, name) = (meta(object, "namespace"), meta(object, "name"));
        let mut p = self.policy.write().unwrap();
        self.decisions.write().unwrap().clear();
        match kind {
            Kind::ClusterRole => {
                p.cluster_roles.remove(name);
            }
            Kind::Role => {
                p.roles.remove(&(ns.to_string(), name.to_string()));
            }
            Kind::ClusterRoleBinding => p.cluster_bindings.remove(name, ""),
            Kind::RoleBinding => {
                if let Some(b) = p.bindings.get_mut(ns) {
                    b.remove(name, ns);
                }
            }
        }
    }

    /// Replaces every object of `kind` (after a relist) at once: no request sees it half-filled.
    pub fn replace(&self, kind: Kind, objects: &[Value]) {
        let mut fresh = Policy::default();
        let mut cluster_bindings = HashMap::new();
        let mut bindings: HashMap<String, HashMap<String, Value>> = HashMap::new();
        for o in objects {
            let (ns, name) = (meta(o, "namespace"), meta(o, "name"));
            match kind {
                Kind::ClusterRole => {
                    fresh
                        .cluster_roles
                        .insert(name.to_string(), rules::parse_all(&o["rules"]));
                }
                Kind::Role => {
                    fresh.roles.insert(
                        (ns.to_string(), name.to_string()),
                        rules::parse_all(&o["rules"]),
                    );
                }
                Kind::ClusterRoleBinding => {
                    cluster_bindings.insert(name.to_string(), o.clone());
                }
                Kind::RoleBinding => {
                    bindings
                        .entry(ns.to_string())
                        .or_default()
                        .insert(name.to_string(), o.clone());
                }
            }
        }
        fresh.cluster_bindings.by_name = cluster_bindings;
        fresh.cluster_bindings.reindex("");
        for (ns, by_name) in bindings {
            let mut b = Bindings {
                by_name,
                ..Bindings::default()
            };
            b.reindex(&ns);
            fresh.bindings.insert(ns, b);
        }
        let mut p = self.policy.write().unwrap();
        self.decisions.write().unwrap().clear();
        match kind {
            Kind::ClusterRole => p.cluster_roles = fresh.cluster_roles,
            Kind::Role => p.roles = fresh.roles,
            Kind::ClusterRoleBinding => p.cluster_bindings = fresh.cluster_bindings,
            Kind::RoleBinding => p.bindings = fresh.bindings,
        }
    }

    /// Decides a request.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        if self.always_allow.load(std::sync::atomic::Ordering::Relaxed) || a.user.in_group(MASTERS)
        {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        let key = decision_key(a);
        // The policy lock is held across lookup and walk, so a decision made under an old
        // policy is never filed after the change that cleared the memory.
        let p = self.policy.read().unwrap();
        if let Some(known) = self.decisions.read().unwrap().get(&key) {
            return known.clone();
        }
        let decision = match p.first_grant(&a.user, &a.namespace, |rules| {
            rules.iter().any(|r| r.allows(a))
        }) {
            Some(reason) => Decision {
                allowed: true,
                reason,
            },
            None => Decision {
                allowed: false,
                reason: String::new(),
            },
        };
        let mut decisions = self.decisions.write().unwrap();
        if decisions.len() >= CACHED_DECISIONS {
            decisions.clear();
        }
        decisions.insert(key, decision.clone());
        decision
    }

    /// The rules of a role as the policy holds them now (none when it does not exist).
    pub fn role_rules(&self, role_kind: &str, namespace: &str, name: &str) -> Option<Vec<Rule>> {
        let p = self.policy.read().unwrap();
        p.role_rules(role_kind, namespace, name).cloned()
    }

    /// Every rule that applies to `user` in `namespace` (cluster-wide ones included), for
    /// SelfSubjectRulesReview.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<Rule> {
        if user.in_group(MASTERS) {
            return vec![Rule::everything(), Rule::every_non_resource_url()];
        }
        let p = self.policy.read().unwrap();
        let mut all = Vec::new();
        p.first_grant(user, namespace, |rules| {
            all.extend(rules.iter().cloned());
            false
        });
        all
    }
}

impl Policy {
    /// The rules of a Role in `namespace` or of a ClusterRole.
    fn role_rules(&self, role_kind: &str, namespace: &str, name: &str) -> Option<&Vec<Rule>> {
        if role_kind == "ClusterRole" {
            self.cluster_roles.get(name)
        } else {
            self.roles.get(&(namespace.to_string(), name.to_string()))
        }
    }

    /// Walks the user's grants, cluster-wide then in `namespace`, until `check` accepts a
    /// role's rules; returns kube-apiserver's reason naming that binding.
    fn first_grant(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut check: impl FnMut(&[Rule]) -> bool,
    ) -> Option<String> {
        let keys = subject_keys(user);
        for key in &keys {
            for g in self
                .cluster_bindings
                .by_subject
                .get(key)
                .into_iter()
                .flatten()
            {
                if g.role_kind == "ClusterRole"
                    && let Some(rules) = self.cluster_roles.get(&g.role)
                    && check(rules)
                {
                    return Some(format!(
                        "RBAC: allowed by ClusterRoleBinding {:?} of ClusterRole {:?} to {}",
                        g.binding, g.role, g.subject
                    ));
                }
            }
        }
        if namespace.is_empty() {
            return None;
        }
        let bindings = self.bindings.get(namespace)?;
        for key in &keys {
            for g in bindings.by_subject.get(key).into_iter().flatten() {
                if let Some(rules) = self.role_rules(&g.role_kind, namespace, &g.role)
                    && check(rules)
                {
                    return Some(format!(
                        "RBAC: allowed by RoleBinding {:?} of {} {:?} to {}",
                        format!("{}/{namespace}", g.binding),
                        g.role_kind,
                        g.role,
                        g.subject
                    ));
                }
            }
        }
        None
    }
}
