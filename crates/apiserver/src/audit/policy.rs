//! The audit policy (`audit.k8s.io/v1` `Policy`): its rules, and the level and omitted
//! stages of a request, decided by the first rule that matches it (none: level `None`).

use serde::Deserialize;

use crate::rbac::Attributes;

/// How much of a request is recorded, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

/// When an event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupResources {
    #[serde(default)]
    group: String,
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    resource_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    level: Level,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    user_groups: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    resources: Vec<GroupResources>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    #[serde(default)]
    omit_stages: Vec<Stage>,
    omit_managed_fields: Option<bool>,
}

/// A loaded policy.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    rules: Vec<Rule>,
    #[serde(default)]
    omit_stages: Vec<Stage>,
    #[serde(default)]
    omit_managed_fields: bool,
}

/// What the policy decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: bool,
}

impl Policy {
    /// Reads a policy file's YAML (or JSON).
    pub fn parse(text: &str) -> Result<Self, String> {
        let policy: Policy = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        if policy.kind != "Policy" {
            return Err(format!("kind {:?} is not a Policy", policy.kind));
        }
        if !matches!(
            policy.api_version.as_str(),
            "audit.k8s.io/v1" | "audit.k8s.io/v1beta1" | "audit.k8s.io/v1alpha1"
        ) {
            return Err(format!(
                "apiVersion {:?} is not audit.k8s.io/v1",
                policy.api_version
            ));
        }
        for (i, rule) in policy.rules.iter().enumerate() {
            if !rule.non_resource_urls.is_empty()
                && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
            {
                return Err(format!(
                    "rules[{i}].nonResourceURLs: Invalid value: {:?}: rules cannot apply to both regular resources and non-resource URLs",
                    rule.non_resource_urls
                ));
            }
        }
        Ok(policy)
    }

    /// The first matching rule's level and the stages it and the policy omit.
    pub fn decide(&self, a: &Attributes) -> Decision {
        let Some(rule) = self.rules.iter().find(|r| r.matches(a)) else {
            return Decision {
                level: Level::None,
                omit_stages: Vec::new(),
                omit_managed_fields: false,
            };
        };
        let mut omit_stages = self.omit_stages.clone();
        omit_stages.extend(rule.omit_stages.iter().copied());
        Decision {
            level: rule.level,
            omit_stages,
            omit_managed_fields: rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
        }
    }
}

fn listed(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

/// A non-resource URL pattern: exact, `*`, or a prefix ending in `*`.
fn path_matches(pattern: &str, path: &str) -> bool {
    pattern == "*"
        || pattern == path
        || pattern
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

impl Rule {
    fn matches(&self, a: &Attributes) -> bool {
        if !listed(&self.users, &a.user.name) || !listed(&self.verbs, &a.verb) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !a.user.groups.iter().any(|g| self.user_groups.contains(g))
        {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return a.resource_request && self.matches_resource(a);
        }
        if !self.non_resource_urls.is_empty() {
            return !a.resource_request
                && self
                    .non_resource_urls
                    .iter()
                    .any(|p| path_matches(p, &a.path));
        }
        true
    }

    fn matches_resource(&self, a: &Attributes) -> bool {
        if !self.namespaces.is_empty() && !self.namespaces.contains(&a.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        self.resources.iter().any(|gr| {
            gr.group == a.api_group
                && (gr.resources.is_empty()
                    || gr.resources.iter().any(|res| {
                        listed(&gr.resource_names, &a.name) && resource_matches(res, a, &combined)
                    }))
        })
    }
}

/// `pods`, `pods/log`, `*`, `*/status` or `pods/*` against a request's resource.
fn resource_matches(pattern: &str, a: &Attributes, combined: &str) -> bool {
    pattern == combined
        || pattern == "*"
        || (!a.subresource.is_empty() && pattern.strip_prefix("*/") == Some(&a.subresource))
        || pattern.strip_suffix("/*") == Some(&a.resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::UserInfo;

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  resources: [{group: "", resources: ["configmaps"], resourceNames: ["quiet"]}]
- level: RequestResponse
  verbs: ["create", "delete"]
  resources: [{group: "", resources: ["pods", "pods/log"]}]
- level: Request
  userGroups: ["ops"]
  namespaces: ["kube-system"]
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: Metadata
  omitStages: ["ResponseStarted"]
"#;

    fn request(user: &str, groups: &[&str], method: &str, path: &str) -> Attributes {
        let user = UserInfo::authenticated(user, groups.iter().map(|g| g.to_string()).collect());
        Attributes::of_request(user, method, path, &[])
    }

    #[test]
    fn first_matching_rule_decides() {
        let p = Policy::parse(POLICY).unwrap();
        let level = |a: &Attributes| p.decide(a).level;
        let quiet = request(
            "u",
            &[],
            "GET",
            "/api/v1/namespaces/default/configmaps/quiet",
        );
        assert_eq!(level(&quiet), Level::None);
        let loud = request(
            "u",
            &[],
            "GET",
            "/api/v1/namespaces/default/configmaps/loud",
        );
        assert_eq!(level(&loud), Level::Metadata);
        let create = request("u", &[], "POST", "/api/v1/namespaces/default/pods");
        assert_eq!(level(&create), Level::RequestResponse);
        let get_pod = request("u", &[], "GET", "/api/v1/namespaces/default/pods/p");
        assert_eq!(level(&get_pod), Level::Metadata);
        let ops = request(
            "x",
            &["ops"],
            "GET",
            "/api/v1/namespaces/kube-system/secrets",
        );
        assert_eq!(level(&ops), Level::Request);
        assert_eq!(
            level(&request("x", &["ops"], "GET", "/healthz/etcd")),
            Level::None
        );
        assert_eq!(level(&request("x", &[], "GET", "/version")), Level::None);
        let d = p.decide(&loud);
        assert_eq!(
            d.omit_stages,
            vec![Stage::RequestReceived, Stage::ResponseStarted]
        );
    }

    #[test]
    fn subresource_patterns_and_bad_policies() {
        let a = request("u", &[], "GET", "/api/v1/namespaces/d/pods/p/log");
        assert!(resource_matches("pods/log", &a, "pods/log"));
        assert!(resource_matches("*/log", &a, "pods/log"));
        assert!(resource_matches("pods/*", &a, "pods/log"));
        assert!(!resource_matches("pods", &a, "pods/log"));
        assert!(Policy::parse("kind: Policy\napiVersion: v1\n").is_err());
        let both = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  namespaces: [a]\n  nonResourceURLs: [/x]\n";
        assert!(
            Policy::parse(both)
                .unwrap_err()
                .contains("cannot apply to both")
        );
        let level = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n";
        assert!(Policy::parse(level).is_err());
    }
}
