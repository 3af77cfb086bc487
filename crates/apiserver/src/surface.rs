//! What the server serves of the built-in API: the Kubernetes version it acts as
//! (`--kube-version`, for `/version` and the resources that version had) and the group-versions
//! `--runtime-config` turns off. Custom resources and aggregated APIs are not affected.

use crate::featuregates::FeatureGates;
use crate::resources::{self, ResourceType};

/// Minor versions of Kubernetes the server can act as.
pub const MINORS: std::ops::RangeInclusive<u32> = 27..=33;

/// Built-in resources first served (at the version listed here) after 1.27, with that minor:
/// (group, version, plural, minor). Everything else is served since 1.27 or earlier.
const INTRODUCED: &[(&str, &str, &str, u32)] = &[
    ("authentication.k8s.io", "v1", "selfsubjectreviews", 28),
    ("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", 29),
    (
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "prioritylevelconfigurations",
        29,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        30,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        30,
    ),
    ("networking.k8s.io", "v1", "servicecidrs", 33),
    ("networking.k8s.io", "v1", "ipaddresses", 33),
];

/// The patch release reported when `--kube-version` names only a minor.
const DEFAULT_PATCH: &[(u32, u32)] = &[(33, 1)];

/// kube-apiserver 1.33's group-versions, with their stage: a runtime-config key naming a
/// known group with any other version is refused as kube-apiserver refuses it.
const REGISTERED: &[(&str, &str)] = &[
    ("", "v1"),
    ("admissionregistration.k8s.io", "v1"),
    ("admissionregistration.k8s.io", "v1beta1"),
    ("admissionregistration.k8s.io", "v1alpha1"),
    ("apiextensions.k8s.io", "v1"),
    ("apiregistration.k8s.io", "v1"),
    ("apps", "v1"),
    ("authentication.k8s.io", "v1"),
    ("authentication.k8s.io", "v1beta1"),
    ("authentication.k8s.io", "v1alpha1"),
    ("authorization.k8s.io", "v1"),
    ("autoscaling", "v1"),
    ("autoscaling", "v2"),
    ("batch", "v1"),
    ("certificates.k8s.io", "v1"),
    ("certificates.k8s.io", "v1beta1"),
    ("certificates.k8s.io", "v1alpha1"),
    ("coordination.k8s.io", "v1"),
    ("coordination.k8s.io", "v1beta1"),
    ("coordination.k8s.io", "v1alpha2"),
    ("discovery.k8s.io", "v1"),
    ("events.k8s.io", "v1"),
    ("flowcontrol.apiserver.k8s.io", "v1"),
    ("flowcontrol.apiserver.k8s.io", "v1beta3"),
    ("internal.apiserver.k8s.io", "v1alpha1"),
    ("networking.k8s.io", "v1"),
    ("networking.k8s.io", "v1beta1"),
    ("node.k8s.io", "v1"),
    ("policy", "v1"),
    ("rbac.authorization.k8s.io", "v1"),
    ("resource.k8s.io", "v1beta2"),
    ("resource.k8s.io", "v1beta1"),
    ("resource.k8s.io", "v1alpha3"),
    ("scheduling.k8s.io", "v1"),
    ("storage.k8s.io", "v1"),
    ("storage.k8s.io", "v1beta1"),
    ("storage.k8s.io", "v1alpha1"),
    ("storagemigration.k8s.io", "v1alpha1"),
];

/// The served API: version, disabled group-versions and feature gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Surface {
    pub minor: u32,
    pub git_version: String,
    /// Group-versions turned off by `--runtime-config`.
    pub disabled: Vec<(&'static str, &'static str)>,
    pub gates: FeatureGates,
}

impl Default for Surface {
    fn default() -> Self {
        let (_, minor, git) = crate::KUBERNETES_VERSION;
        Self {
            minor: minor.parse().expect("a number"),
            git_version: git.to_string(),
            disabled: Vec::new(),
            gates: FeatureGates::default(),
        }
    }
}

/// The minor a built-in resource was first served at.
fn first_minor(r: &ResourceType) -> u32 {
    INTRODUCED
        .iter()
        .find(|(g, v, p, _)| *g == r.group && *v == r.version && *p == r.plural)
        .map_or(0, |(.., minor)| *minor)
}

fn stage(version: &str) -> &'static str {
    if version.contains("alpha") {
        "alpha"
    } else if version.contains("beta") {
        "beta"
    } else {
        "ga"
    }
}

impl Surface {
    /// Whether `r` is served: custom types always; built-in ones unless their group-version is
    /// off or they came after the version served.
    pub fn serves(&self, r: &ResourceType) -> bool {
        if r.custom.is_some() {
            return true;
        }
        !self.disabled.contains(&(r.group, r.version)) && first_minor(r) <= self.minor
    }

    /// Acts as Kubernetes `v1.MINOR[.PATCH]`.
    pub fn set_kube_version(&mut self, text: &str) -> Result<(), String> {
        let refuse = || {
            format!(
                "unsupported --kube-version {text:?}: supported versions are v1.{} to v1.{}",
                MINORS.start(),
                MINORS.end()
            )
        };
        let numbers = text.strip_prefix('v').unwrap_or(text);
        let parts: Vec<&str> = numbers.split('.').collect();
        let (major, minor, patch) = match parts.as_slice() {
            [major, minor] => (*major, *minor, None),
            [major, minor, patch] => (*major, *minor, Some(*patch)),
            _ => return Err(refuse()),
        };
        let minor: u32 = minor.parse().map_err(|_| refuse())?;
        if major != "1" || !MINORS.contains(&minor) {
            return Err(refuse());
        }
        let patch: u32 = match patch {
            Some(p) => p.parse().map_err(|_| refuse())?,
            None => DEFAULT_PATCH
                .iter()
                .find(|(m, _)| *m == minor)
                .map_or(0, |(_, p)| *p),
        };
        self.minor = minor;
        self.git_version = format!("v1.{minor}.{patch}");
        Ok(())
    }

    /// Applies `--runtime-config` (`key=bool,...`) as kube-apiserver does: `api/all`,
    /// `api/ga`, `api/beta` and `api/alpha` first, then `group/version` keys (`v1` and `api/v1`
    /// name the core group). Keys of groups kube-apiserver does not have are ignored.
    pub fn set_runtime_config(&mut self, text: &str) -> Result<(), String> {
        let mut pairs = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let on = match value.trim() {
                "" => true,
                v => go_bool(v).ok_or_else(|| format!("invalid value {key}={v}"))?,
            };
            pairs.push((key.trim().to_string(), on));
        }
        let served = resources::group_versions();
        let mut off: Vec<(&'static str, &'static str)> = Vec::new();
        let mut apply = |gv: (&'static str, &'static str), on: bool| {
            off.retain(|x| *x != gv);
            if !on {
                off.push(gv);
            }
        };
        for (key, on) in &pairs {
            let wanted = match key.as_str() {
                "api/all" => None,
                "api/ga" => Some("ga"),
                "api/beta" => Some("beta"),
                "api/alpha" => Some("alpha"),
                _ => continue,
            };
            for gv in &served {
                if wanted.is_none_or(|s| stage(gv.1) == s) {
                    apply(*gv, *on);
                }
            }
        }
        for (key, on) in &pairs {
            if matches!(
                key.as_str(),
                "api/all" | "api/ga" | "api/beta" | "api/alpha"
            ) {
                continue;
            }
            let tokens: Vec<&str> = key.split('/').collect();
            let (group, version) = match tokens.as_slice() {
                ["v1"] | ["api", "v1"] | ["api", "v1", _] => ("", "v1"),
                [group, version] | [group, version, _] => (*group, *version),
                _ => continue,
            };
            if !REGISTERED.iter().any(|(g, _)| *g == group) {
                continue;
            }
            if !REGISTERED.contains(&(group, version)) {
                let gv = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                return Err(format!("group version {gv} that has not been registered"));
            }
            match served.iter().find(|gv| **gv == (group, version)) {
                Some(gv) if tokens.len() < 3 || *on => apply(*gv, *on),
                Some(_) => {}
                None if *on => tracing::warn!(
                    key = %key,
                    "--runtime-config enables a group-version this server does not implement; ignored"
                ),
                None => {}
            }
        }
        self.disabled = off;
        Ok(())
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(s: &Surface, group: &str, plural: &str) -> bool {
        let r = resources::RESOURCES
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .unwrap();
        s.serves(r)
    }

    #[test]
    fn runtime_config_turns_group_versions_off_and_on() {
        let mut s = Surface::default();
        s.set_runtime_config("batch/v1=false").unwrap();
        assert!(!served(&s, "batch", "jobs") && served(&s, "apps", "deployments"));
        s.set_runtime_config("api/all=false,apps/v1=true,api/v1")
            .unwrap();
        assert!(!served(&s, "batch", "jobs") && served(&s, "apps", "deployments"));
        assert!(served(&s, "", "pods"));
        s.set_runtime_config("api/beta=false,foo.example.com/v1=true")
            .unwrap();
        assert!(
            s.disabled.is_empty(),
            "beta and unknown groups change nothing here"
        );
        let err = s.set_runtime_config("batch/v2=true").unwrap_err();
        assert_eq!(err, "group version batch/v2 that has not been registered");
        assert_eq!(
            s.set_runtime_config("batch/v1=x").unwrap_err(),
            "invalid value batch/v1=x"
        );
    }

    #[test]
    fn kube_version_limits_resources() {
        let mut s = Surface::default();
        assert_eq!(s.git_version, "v1.33.1");
        s.set_kube_version("v1.27").unwrap();
        assert_eq!((s.minor, s.git_version.as_str()), (27, "v1.27.0"));
        assert!(!served(
            &s,
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies"
        ));
        assert!(!served(&s, "flowcontrol.apiserver.k8s.io", "flowschemas"));
        assert!(served(&s, "batch", "jobs"));
        s.set_kube_version("1.30.4").unwrap();
        assert_eq!(s.git_version, "v1.30.4");
        assert!(served(
            &s,
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies"
        ));
        assert!(!served(&s, "networking.k8s.io", "servicecidrs"));
        for bad in ["v1.26", "v1.34.0", "v2.30", "latest", "v1.x"] {
            let e = s.set_kube_version(bad).unwrap_err();
            assert!(e.contains("v1.27 to v1.33"), "{e}");
        }
    }
}
