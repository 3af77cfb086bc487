//! Who a request comes from, as kube-apiserver decides it: a client certificate signed by the
//! cluster CA (user = CN, groups = O), or a bearer token that is a service-account JWT signed
//! by the cluster's service-account key; `Impersonate-*` headers then replace the user when
//! the caller may impersonate. Authenticated users get the `system:authenticated` group.

pub mod impersonation;
pub mod legacy;
pub mod tokens;

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The group of the cluster's all-powerful users: authorization is not consulted for them.
pub const MASTERS: &str = "system:masters";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// An authenticated identity (`authentication.k8s.io/v1` UserInfo).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with the groups kube-apiserver adds to everyone who authenticated.
    pub fn authenticated(name: &str, mut groups: Vec<String>) -> Self {
        if name != ANONYMOUS && !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_string());
        }
        Self {
            name: name.to_string(),
            groups,
            ..Self::default()
        }
    }

    /// The identity of in-process components and of the trusted plain-HTTP listener.
    pub fn superuser() -> Self {
        Self::authenticated(pki::ADMIN_USER, vec![MASTERS.to_string()])
    }

    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.to_string(),
            groups: vec![UNAUTHENTICATED.to_string()],
            ..Self::default()
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }

    /// `(namespace, name)` when this is a service account.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        self.name
            .strip_prefix(SERVICE_ACCOUNT_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'))
    }

    /// As `authentication.k8s.io/v1` UserInfo JSON.
    pub fn to_json(&self) -> Value {
        let mut user = json!({"username": self.name});
        if !self.uid.is_empty() {
            user["uid"] = json!(self.uid);
        }
        if !self.groups.is_empty() {
            user["groups"] = json!(self.groups);
        }
        if !self.extra.is_empty() {
            user["extra"] = json!(self.extra);
        }
        user
    }

    /// Reads UserInfo-shaped JSON (`username`/`user`, `uid`, `groups`, `extra`).
    pub fn from_json(v: &Value, name_field: &str) -> Self {
        let strings = crate::objects::string_list;
        Self {
            name: v[name_field].as_str().unwrap_or("").to_string(),
            uid: v["uid"].as_str().unwrap_or("").to_string(),
            groups: strings(&v["groups"]),
            extra: v["extra"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
                .unwrap_or_default(),
        }
    }
}

/// The user named by a client certificate: CN is the name, each O a group.
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    Some(UserInfo::authenticated(&name, groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_subject_gives_user_and_groups() {
        let bundle = pki::generate(&[]).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(bundle.admin.cert.as_bytes()).unwrap();
        let user = user_from_certificate(&pem.contents).unwrap();
        assert_eq!(user.name, pki::ADMIN_USER);
        assert_eq!(user.groups, [MASTERS, AUTHENTICATED]);
    }

    #[test]
    fn service_account_names_split() {
        let sa = UserInfo::authenticated("system:serviceaccount:team-a:builder", vec![]);
        assert_eq!(sa.service_account(), Some(("team-a", "builder")));
        assert_eq!(UserInfo::anonymous().service_account(), None);
    }
}
