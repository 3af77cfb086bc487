//! Which built-in controllers run, from a `--controllers` value in kube-controller-manager's
//! syntax: `*` turns on every controller that is on by default, `foo` turns `foo` on and `-foo`
//! turns it off; for each controller the first entry naming it wins, and `*` only decides for the
//! ones no entry names.

use std::collections::BTreeSet;

/// Every controller name `--controllers` knows, in the order they are listed in help texts;
/// the ones after the first five run over the shared cache of [`crate::Workloads`].
pub const CONTROLLERS: &[&str] = &[
    "garbage-collector",
    "scheduler",
    "serviceaccount",
    "horizontalpodautoscaling",
    "clusterrole-aggregation",
    "replicaset",
    "replicationcontroller",
    "deployment",
    "job",
    "statefulset",
    "daemonset",
    "cronjob",
    "endpoint",
    "endpointslice",
    "nodelifecycle",
    "resourcequota",
    "persistentvolume-binder",
];

/// kube-controller-manager's other spellings of the same controllers.
const ALIASES: &[(&str, &str)] = &[
    ("garbagecollector", "garbage-collector"),
    ("garbage-collector-controller", "garbage-collector"),
    ("serviceaccount-controller", "serviceaccount"),
    (
        "horizontal-pod-autoscaler-controller",
        "horizontalpodautoscaling",
    ),
    (
        "clusterrole-aggregation-controller",
        "clusterrole-aggregation",
    ),
    ("replicaset-controller", "replicaset"),
    ("replicationcontroller-controller", "replicationcontroller"),
    ("deployment-controller", "deployment"),
    ("job-controller", "job"),
    ("statefulset-controller", "statefulset"),
    ("daemonset-controller", "daemonset"),
    ("cronjob-controller", "cronjob"),
    ("endpoints-controller", "endpoint"),
    ("endpointslice-controller", "endpointslice"),
    ("node-lifecycle-controller", "nodelifecycle"),
    ("resourcequota-controller", "resourcequota"),
    (
        "persistentvolume-binder-controller",
        "persistentvolume-binder",
    ),
];

/// The set of enabled controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    enabled: BTreeSet<&'static str>,
}

fn canonical(name: &str) -> Option<&'static str> {
    CONTROLLERS
        .iter()
        .copied()
        .find(|c| *c == name)
        .or_else(|| ALIASES.iter().find(|(a, _)| *a == name).map(|(_, c)| *c))
}

impl Selection {
    /// Parses a comma-separated `--controllers` value; an empty value enables nothing.
    ///
    /// ```
    /// let s = controllers::Selection::parse("*,-daemonset").unwrap();
    /// assert!(s.enabled("scheduler") && !s.enabled("daemonset"));
    /// ```
    pub fn parse(value: &str) -> Result<Selection, String> {
        let entries: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        Self::from_entries(&entries)
    }

    /// Like [`Selection::parse`], from entries already split.
    pub fn from_entries(entries: &[&str]) -> Result<Selection, String> {
        let mut star = false;
        let mut decided: Vec<(&'static str, bool)> = Vec::new();
        for entry in entries {
            if *entry == "*" {
                star = true;
                continue;
            }
            let (on, name) = match entry.strip_prefix('-') {
                Some(rest) => (false, rest),
                None => (true, *entry),
            };
            let Some(name) = canonical(name) else {
                return Err(format!(
                    "{name:?} is not in the list of known controllers (known: {})",
                    CONTROLLERS.join(", ")
                ));
            };
            if !decided.iter().any(|(n, _)| *n == name) {
                decided.push((name, on));
            }
        }
        let enabled = CONTROLLERS
            .iter()
            .copied()
            .filter(|c| match decided.iter().find(|(n, _)| n == c) {
                Some((_, on)) => *on,
                None => star,
            })
            .collect();
        Ok(Selection { enabled })
    }

    /// Every controller.
    pub fn all() -> Selection {
        Selection {
            enabled: CONTROLLERS.iter().copied().collect(),
        }
    }

    pub fn enabled(&self, name: &str) -> bool {
        canonical(name).is_some_and(|c| self.enabled.contains(c))
    }

    pub fn is_empty(&self) -> bool {
        self.enabled.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_enables_all_and_minus_disables() {
        let s = Selection::parse("*,-daemonset").unwrap();
        assert!(s.enabled("statefulset") && s.enabled("scheduler"));
        assert!(!s.enabled("daemonset"));
        assert_eq!(Selection::parse("*").unwrap(), Selection::all());
    }

    #[test]
    fn first_entry_naming_a_controller_wins() {
        let s = Selection::parse("-job,job,*").unwrap();
        assert!(!s.enabled("job"));
        let s = Selection::parse("job,-job").unwrap();
        assert!(s.enabled("job"));
        assert!(!s.enabled("deployment"));
    }

    #[test]
    fn plain_lists_and_aliases() {
        let s = Selection::parse("scheduler, endpoints-controller").unwrap();
        assert!(s.enabled("scheduler") && s.enabled("endpoint"));
        assert!(!s.enabled("endpointslice"));
        assert!(Selection::parse("").unwrap().is_empty());
        assert!(Selection::parse("-scheduler").unwrap().is_empty());
    }

    #[test]
    fn unknown_names_are_rejected() {
        let e = Selection::parse("*,-bogus").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }
}
