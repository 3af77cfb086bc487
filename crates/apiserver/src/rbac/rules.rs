//! One RBAC PolicyRule and how it matches a request: verbs, API groups, resources with
//! `resource/subresource` and `*/subresource`, resourceNames, and non-resource URLs with a
//! trailing `*`. Also coverage: whether one set of rules grants everything another does, as
//! the escalation check on role writes needs.

use serde_json::{Value, json};

use super::Attributes;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

use crate::objects::string_list as strings;

/// The rules of a role's `rules` field.
pub fn parse_all(rules: &Value) -> Vec<Rule> {
    rules
        .as_array()
        .map(|a| a.iter().map(Rule::parse).collect())
        .unwrap_or_default()
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

impl Rule {
    pub fn parse(v: &Value) -> Self {
        Self {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    pub fn everything() -> Self {
        Self {
            verbs: vec!["*".into()],
            api_groups: vec!["*".into()],
            resources: vec!["*".into()],
            ..Self::default()
        }
    }

    pub fn every_non_resource_url() -> Self {
        Self {
            verbs: vec!["*".into()],
            non_resource_urls: vec!["*".into()],
            ..Self::default()
        }
    }

    pub fn is_resource_rule(&self) -> bool {
        !self.resources.is_empty()
    }

    /// Whether this rule allows the request.
    pub fn allows(&self, a: &Attributes) -> bool {
        if !has(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|u| url_matches(u, &a.path));
        }
        has(&self.api_groups, &a.api_group)
            && self.resource_matches(&a.resource, &a.subresource)
            && (self.resource_names.is_empty() || self.resource_names.contains(&a.name))
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        let combined = if subresource.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{subresource}")
        };
        self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
        })
    }

    /// JSON as SelfSubjectRulesReview reports it.
    pub fn to_review_json(&self) -> Value {
        if self.is_resource_rule() {
            let mut v = json!({"verbs": self.verbs, "apiGroups": self.api_groups, "resources": self.resources});
            if !self.resource_names.is_empty() {
                v["resourceNames"] = json!(self.resource_names);
            }
            v
        } else {
            json!({"verbs": self.verbs, "nonResourceURLs": self.non_resource_urls})
        }
    }

    /// As kube-apiserver lists rules in escalation errors.
    pub fn describe(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        if self.is_resource_rule() {
            let names = if self.resource_names.is_empty() {
                String::new()
            } else {
                format!(", ResourceNames:[{}]", list(&self.resource_names))
            };
            format!(
                "{{APIGroups:[{}], Resources:[{}]{names}, Verbs:[{}]}}",
                list(&self.api_groups),
                list(&self.resources),
                list(&self.verbs)
            )
        } else {
            format!(
                "{{NonResourceURLs:[{}], Verbs:[{}]}}",
                list(&self.non_resource_urls),
                list(&self.verbs)
            )
        }
    }

    /// The rule split into single-verb, single-group, single-resource, single-name pieces.
    fn atoms(&self) -> Vec<Rule> {
        let one = |v: &String| vec![v.clone()];
        let or_empty = |list: &[String]| -> Vec<Vec<String>> {
            if list.is_empty() {
                vec![Vec::new()]
            } else {
                list.iter().map(one).collect()
            }
        };
        let mut out = Vec::new();
        for verb in &self.verbs {
            for url in &self.non_resource_urls {
                out.push(Rule {
                    verbs: one(verb),
                    non_resource_urls: one(url),
                    ..Rule::default()
                });
            }
            for group in &self.api_groups {
                for resource in &self.resources {
                    for names in or_empty(&self.resource_names) {
                        out.push(Rule {
                            verbs: one(verb),
                            api_groups: one(group),
                            resources: one(resource),
                            resource_names: names,
                            ..Rule::default()
                        });
                    }
                }
            }
        }
        out
    }

    /// Whether this rule grants all of `atom` (a single-valued rule from [`Rule::atoms`]).
    fn covers_atom(&self, atom: &Rule) -> bool {
        let all_in = |have: &[String], want: &[String]| {
            want.iter().all(|w| have.iter().any(|h| h == "*" || h == w))
        };
        if !all_in(&self.verbs, &atom.verbs) {
            return false;
        }
        if !atom.non_resource_urls.is_empty() {
            return atom.non_resource_urls.iter().all(|w| {
                self.non_resource_urls
                    .iter()
                    .any(|h| h == w || url_matches(h, w))
            });
        }
        let resource_ok = atom.resources.iter().all(|w| {
            self.resources.iter().any(|h| {
                h == "*"
                    || h == w
                    || (h.starts_with("*/")
                        && w.split_once('/').map(|(_, sub)| sub) == h.strip_prefix("*/"))
            })
        });
        // Resource names have no wildcard.
        resource_ok
            && all_in(&self.api_groups, &atom.api_groups)
            && (self.resource_names.is_empty()
                || (!atom.resource_names.is_empty()
                    && atom
                        .resource_names
                        .iter()
                        .all(|w| self.resource_names.contains(w))))
    }
}

/// A rule URL matches a path exactly, or by prefix when it ends in `*`.
fn url_matches(rule: &str, path: &str) -> bool {
    rule == "*"
        || rule == path
        || rule
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// The parts of `wanted` that `owned` does not grant; empty when `owned` covers it all.
pub fn uncovered(owned: &[Rule], wanted: &[Rule]) -> Vec<Rule> {
    wanted
        .iter()
        .flat_map(Rule::atoms)
        .filter(|atom| !owned.iter().any(|o| o.covers_atom(atom)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;

    fn rule(v: Value) -> Rule {
        Rule::parse(&v)
    }

    fn request(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            user: UserInfo::default(),
            verb: verb.into(),
            namespace: "default".into(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            resource_request: true,
            path: String::new(),
        }
    }

    #[test]
    fn resources_subresources_and_names() {
        let pods =
            rule(json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(pods.allows(&request("get", "", "pods", "", "a")));
        assert!(!pods.allows(&request("get", "", "pods", "log", "a")));
        assert!(!pods.allows(&request("delete", "", "pods", "", "a")));
        assert!(!pods.allows(&request("get", "apps", "pods", "", "a")));
        let logs = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/log"]}));
        assert!(logs.allows(&request("get", "", "pods", "log", "a")));
        assert!(!logs.allows(&request("get", "", "pods", "", "a")));
        let named = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"]}),
        );
        assert!(named.allows(&request("get", "", "configmaps", "", "x")));
        assert!(!named.allows(&request("get", "", "configmaps", "", "y")));
        assert!(!named.allows(&request("get", "", "configmaps", "", "")));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix() {
        let r = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]}));
        let mut a = request("get", "", "", "", "");
        a.resource_request = false;
        for (path, ok) in [
            ("/healthz", true),
            ("/healthz/ping", false),
            ("/api/v1", true),
            ("/apis", false),
        ] {
            a.path = path.into();
            assert_eq!(r.allows(&a), ok, "{path}");
        }
    }

    #[test]
    fn coverage_finds_what_is_missing() {
        let owned = [rule(
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "services"]}),
        )];
        let within = [rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        assert!(uncovered(&owned, &within).is_empty());
        let beyond = [rule(
            json!({"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        let missing = uncovered(&owned, &beyond);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].verbs, ["delete"]);
        let wildcard = [rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["*"]}),
        )];
        assert_eq!(uncovered(&owned, &wildcard).len(), 1);
        assert!(uncovered(&[Rule::everything()], &wildcard).is_empty());
    }
}
