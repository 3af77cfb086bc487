//! What a request asks to do, read from its method, path and query alone as kube-apiserver's
//! request-info resolver reads it: verb (`list`/`watch` for collection GETs, `deletecollection`,
//! the legacy `/watch/` and `/proxy/` prefixes), API group and version, namespace, resource,
//! subresource and name; anything outside `/api/v1/...` and `/apis/<group>/<version>/...` is a
//! non-resource request on its path.

use crate::authn::UserInfo;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub resource_request: bool,
    pub path: String,
}

fn method_verb(method: &str) -> &'static str {
    match method {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    }
}

/// Subresources whose GET upgrade to a stream needs `create` (kube-apiserver 1.31+).
const STREAMING: [&str; 3] = ["exec", "attach", "portforward"];

/// The name a field selector pins, when it is exactly `metadata.name=x` (or `==x`).
fn single_name(selector: &str) -> Option<&str> {
    let rest = selector.strip_prefix("metadata.name")?;
    let name = rest.strip_prefix("==").or_else(|| rest.strip_prefix('='))?;
    (!name.contains(',') && !name.is_empty()).then_some(name)
}

impl Attributes {
    /// Reads a request. `path` is decoded, `query` its decoded pairs.
    pub fn of_request(
        user: UserInfo,
        method: &str,
        path: &str,
        query: &[(String, String)],
    ) -> Self {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let non_resource = || Attributes {
            user: user.clone(),
            verb: method.to_ascii_lowercase(),
            path: path.to_string(),
            ..Attributes::default()
        };
        let (group, rest) = match parts.as_slice() {
            ["api", rest @ ..] if !rest.is_empty() => ("", rest),
            ["apis", group, rest @ ..] if !rest.is_empty() => (*group, rest),
            _ => return non_resource(),
        };
        let [version, rest @ ..] = rest else {
            return non_resource();
        };
        if rest.is_empty() {
            return non_resource();
        }
        let (mut verb, mut rest) = match rest {
            [special @ ("watch" | "proxy"), tail @ ..] if !tail.is_empty() => {
                (special.to_string(), tail)
            }
            _ => (method_verb(method).to_string(), rest),
        };
        let mut namespace = String::new();
        if let ["namespaces", ns, tail @ ..] = rest {
            namespace = ns.to_string();
            if !tail.is_empty() && !matches!(tail[0], "status" | "finalize") {
                rest = tail;
            }
        }
        let resource = rest.first().copied().unwrap_or("").to_string();
        let mut name = rest.get(1).copied().unwrap_or("").to_string();
        let subresource = if verb == "proxy" {
            ""
        } else {
            rest.get(2).copied().unwrap_or("")
        };
        let param = |k: &str| {
            // The last value of a repeated parameter, as the handlers read the query.
            query
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        if name.is_empty() && verb == "get" {
            verb = if matches!(param("watch"), Some("true" | "1")) {
                "watch".into()
            } else {
                "list".into()
            };
        }
        if name.is_empty()
            && (verb == "list" || verb == "watch")
            && let Some(n) = param("fieldSelector").and_then(single_name)
        {
            name = n.to_string();
        }
        if name.is_empty() && verb == "delete" {
            verb = "deletecollection".into();
        }
        if verb == "get" && STREAMING.contains(&subresource) {
            verb = "create".into();
        }
        Attributes {
            user,
            verb,
            namespace,
            api_group: group.to_string(),
            api_version: version.to_string(),
            resource,
            subresource: subresource.to_string(),
            name,
            resource_request: true,
            path: path.to_string(),
        }
    }

    /// kube-apiserver's Forbidden message for a denied request.
    pub fn forbidden_message(&self) -> String {
        let user = &self.user.name;
        if !self.resource_request {
            return format!(
                "forbidden: User {user:?} cannot {} path {:?}",
                self.verb, self.path
            );
        }
        let resource = if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        };
        let qualified = if self.api_group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.api_group)
        };
        let what = if self.name.is_empty() {
            format!("{qualified} is forbidden")
        } else {
            format!("{qualified} {:?} is forbidden", self.name)
        };
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", self.namespace)
        };
        format!(
            "{what}: User {user:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            self.verb, self.api_group
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(method: &str, path: &str, query: &[(&str, &str)]) -> Attributes {
        let q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Attributes::of_request(UserInfo::anonymous(), method, path, &q)
    }

    #[test]
    fn verbs_and_scopes() {
        let cases = [
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                vec![],
                "list",
                "default",
                "",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/pods",
                vec![("watch", "true")],
                "watch",
                "",
                "",
                "pods",
                "",
                "",
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/a/pods/p",
                vec![],
                "watch",
                "a",
                "",
                "pods",
                "p",
                "",
            ),
            (
                "DELETE",
                "/apis/apps/v1/namespaces/a/deployments",
                vec![],
                "deletecollection",
                "a",
                "apps",
                "deployments",
                "",
                "",
            ),
            (
                "PUT",
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                vec![],
                "update",
                "a",
                "apps",
                "deployments",
                "d",
                "scale",
            ),
            (
                "GET",
                "/api/v1/namespaces/a",
                vec![],
                "get",
                "a",
                "",
                "namespaces",
                "a",
                "",
            ),
            (
                "PUT",
                "/api/v1/namespaces/a/finalize",
                vec![],
                "update",
                "a",
                "",
                "namespaces",
                "a",
                "finalize",
            ),
            (
                "GET",
                "/api/v1/namespaces/a/pods/p/exec",
                vec![],
                "create",
                "a",
                "",
                "pods",
                "p",
                "exec",
            ),
            (
                "GET",
                "/api/v1/nodes/n/proxy/metrics",
                vec![],
                "get",
                "",
                "",
                "nodes",
                "n",
                "proxy",
            ),
            (
                "GET",
                "/api/v1/namespaces/a/configmaps",
                vec![("fieldSelector", "metadata.name=x")],
                "list",
                "a",
                "",
                "configmaps",
                "x",
                "",
            ),
        ];
        for (method, path, query, verb, ns, group, resource, name, sub) in cases {
            let a = of(method, path, &query);
            assert!(a.resource_request, "{path}");
            assert_eq!(
                (
                    a.verb.as_str(),
                    a.namespace.as_str(),
                    a.api_group.as_str(),
                    a.resource.as_str(),
                    a.name.as_str(),
                    a.subresource.as_str()
                ),
                (verb, ns, group, resource, name, sub),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn repeated_parameters_are_read_as_the_handlers_read_them() {
        let a = of(
            "GET",
            "/api/v1/namespaces/a/configmaps",
            &[
                ("fieldSelector", "metadata.name=allowed"),
                ("fieldSelector", ""),
                ("watch", "0"),
                ("watch", "1"),
            ],
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", ""));
        let a = of(
            "GET",
            "/api/v1/namespaces/a/configmaps",
            &[("fieldSelector", "metadata.name==x")],
        );
        assert_eq!(a.name, "x");
    }

    #[test]
    fn discovery_and_health_are_non_resource() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/healthz",
            "/version",
        ] {
            let a = of("GET", path, &[]);
            assert!(!a.resource_request, "{path}");
            assert_eq!(a.verb, "get");
        }
    }

    #[test]
    fn forbidden_messages_read_as_kube_apiserver_writes_them() {
        let mut a = of("GET", "/api/v1/namespaces/default/pods", &[]);
        a.user.name = "system:serviceaccount:default:default".into();
        assert_eq!(
            a.forbidden_message(),
            "pods is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        let a = of(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin",
            &[],
        );
        assert_eq!(
            a.forbidden_message(),
            "clusterroles.rbac.authorization.k8s.io \"admin\" is forbidden: User \"system:anonymous\" cannot get resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
        );
        let a = of("GET", "/metrics", &[]);
        assert_eq!(
            a.forbidden_message(),
            "forbidden: User \"system:anonymous\" cannot get path \"/metrics\""
        );
    }
}
