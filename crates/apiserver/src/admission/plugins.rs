//! `--enable-admission-plugins` and `--disable-admission-plugins`: the names kube-apiserver
//! 1.33 knows, and which of the plugins this server runs are turned off.

use std::collections::HashSet;
use std::sync::RwLock;

/// kube-apiserver 1.33's admission plugins.
const KNOWN: &[&str] = &[
    "AlwaysAdmit",
    "AlwaysDeny",
    "AlwaysPullImages",
    "CertificateApproval",
    "CertificateSigning",
    "CertificateSubjectRestriction",
    "ClusterTrustBundleAttest",
    "DefaultIngressClass",
    "DefaultStorageClass",
    "DefaultTolerationSeconds",
    "DenyServiceExternalIPs",
    "EventRateLimit",
    "ExtendedResourceToleration",
    "ImagePolicyWebhook",
    "LimitPodHardAntiAffinityTopology",
    "LimitRanger",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionWebhook",
    "NamespaceAutoProvision",
    "NamespaceExists",
    "NamespaceLifecycle",
    "NodeRestriction",
    "OwnerReferencesPermissionEnforcement",
    "PersistentVolumeClaimResize",
    "PodNodeSelector",
    "PodSecurity",
    "PodTolerationRestriction",
    "PodTopologyLabels",
    "Priority",
    "ResourceQuota",
    "RuntimeClass",
    "ServiceAccount",
    "StorageObjectInUseProtection",
    "TaintNodesByCondition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
];

/// The plugins this server runs that can be turned off.
pub(crate) const PRIORITY: &str = "Priority";
pub(crate) const DEFAULT_STORAGE_CLASS: &str = "DefaultStorageClass";
pub(crate) const DEFAULT_INGRESS_CLASS: &str = "DefaultIngressClass";
pub(crate) const MUTATING_WEBHOOK: &str = "MutatingAdmissionWebhook";
pub(crate) const VALIDATING_WEBHOOK: &str = "ValidatingAdmissionWebhook";
pub(crate) const VALIDATING_POLICY: &str = "ValidatingAdmissionPolicy";

/// The plugins turned off.
#[derive(Default)]
pub(crate) struct Plugins {
    off: RwLock<HashSet<&'static str>>,
}

impl Plugins {
    pub(crate) fn on(&self, name: &str) -> bool {
        !self.off.read().unwrap().contains(name)
    }

    pub(crate) fn set_off(&self, off: HashSet<&'static str>) {
        *self.off.write().unwrap() = off;
    }
}

fn lookup(flag: &str, name: &str) -> Result<&'static str, String> {
    KNOWN
        .iter()
        .find(|k| **k == name)
        .copied()
        .ok_or_else(|| format!("{flag} plugin {name:?} is unknown"))
}

/// Checks both lists with kube-apiserver's messages; the plugins turned off.
pub(crate) fn parse(
    enable: &[String],
    disable: &[String],
) -> Result<HashSet<&'static str>, String> {
    let names = |list: &[String]| -> Vec<String> {
        list.iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()
    };
    for name in names(enable) {
        lookup("enable-admission-plugins", &name)?;
    }
    let mut off = HashSet::new();
    for name in names(disable) {
        let known = lookup("disable-admission-plugins", &name)?;
        if names(enable).contains(&name) {
            return Err(format!("{name:?} can't be both enabled and disabled"));
        }
        off.insert(known);
    }
    Ok(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_plugins_are_refused_with_kube_messages() {
        let e = parse(&["NamespaceLifecycle,Foo".into()], &[]).unwrap_err();
        assert_eq!(e, "enable-admission-plugins plugin \"Foo\" is unknown");
        let e = parse(&[], &["Bar".into()]).unwrap_err();
        assert_eq!(e, "disable-admission-plugins plugin \"Bar\" is unknown");
        let off = parse(
            &["NodeRestriction".into()],
            &["Priority, ValidatingAdmissionWebhook".into()],
        )
        .unwrap();
        assert!(off.contains(PRIORITY) && off.contains(VALIDATING_WEBHOOK) && off.len() == 2);
    }
}
