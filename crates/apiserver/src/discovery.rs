//! API discovery: legacy (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`) and aggregated
//! discovery (`apidiscovery.k8s.io` v2 and v2beta1), chosen from the `Accept` header.

use serde_json::{Value, json};

use crate::resources::{ResourceType, group_versions_of, subresource_kind, subresource_verbs};

/// The served types discovery describes.
pub type Types<'a> = &'a [&'static ResourceType];

/// Which aggregated discovery version a client asked for, if any.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if params
            .first()
            .is_some_and(|m| *m == "application/json" && params.len() == 1)
        {
            return None;
        }
    }
    None
}

fn verbs(r: &ResourceType) -> &'static [&'static str] {
    r.verbs()
}

fn resource_list_entry(r: &ResourceType) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": verbs(r),
        "shortNames": r.short_names,
        "categories": r.categories,
        "storageVersionHash": storage_hash(r),
    })];
    for sub in r.subresources {
        let (g, v, k) = subresource_kind(r, sub);
        let mut e = json!({
            "name": format!("{}/{sub}", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": k,
            "verbs": subresource_verbs(sub),
        });
        if g != r.group || v != r.version {
            e["group"] = json!(g);
            e["version"] = json!(v);
        }
        out.push(e);
    }
    for entry in &mut out {
        if entry["shortNames"].as_array().is_some_and(Vec::is_empty) {
            entry.as_object_mut().unwrap().remove("shortNames");
        }
        if entry["categories"].as_array().is_some_and(Vec::is_empty) {
            entry.as_object_mut().unwrap().remove("categories");
        }
    }
    out
}

fn storage_hash(r: &ResourceType) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (r.group, r.version, r.kind).hash(&mut h);
    let bytes = h.finish().to_be_bytes();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `APIResourceList` for one group-version, or None if not served.
pub fn resource_list(types: Types, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = types
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(|r| resource_list_entry(r))
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

/// `APIVersions` for `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(types: Types, group: &str) -> Value {
    let versions: Vec<Value> = group_versions_of(types)
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    })
}

fn named_groups(types: Types) -> Vec<&'static str> {
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in group_versions_of(types) {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    groups
}

/// `APIGroupList` for `/apis`.
pub fn group_list(types: Types) -> Value {
    let groups: Vec<Value> = named_groups(types)
        .into_iter()
        .map(|g| api_group(types, g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `APIGroup` for `/apis/{group}`, or None.
pub fn group(types: Types, name: &str) -> Option<Value> {
    named_groups(types).contains(&name).then(|| {
        let mut g = api_group(types, name);
        g["kind"] = json!("APIGroup");
        g["apiVersion"] = json!("v1");
        g
    })
}

fn aggregated_resource(r: &ResourceType) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|sub| {
            let (g, v, k) = subresource_kind(r, sub);
            json!({
                "subresource": sub,
                "responseKind": {"group": g, "version": v, "kind": k},
                "verbs": subresource_verbs(sub),
            })
        })
        .collect();
    let mut e = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": verbs(r),
    });
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        e["subresources"] = json!(subresources);
    }
    e
}

/// `APIGroupDiscoveryList` for `/api` (core) or `/apis` (named groups).
pub fn aggregated(types: Types, core: bool, version: &str) -> Value {
    let groups: Vec<&str> = if core { vec![""] } else { named_groups(types) };
    let items: Vec<Value> = groups
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = group_versions_of(types)
                .into_iter()
                .filter(|(gg, _)| *gg == g)
                .map(|(_, v)| {
                    let resources: Vec<Value> = types
                        .iter()
                        .filter(|r| r.group == g && r.version == v)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if g.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": g, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_supported_aggregated_version() {
        let v133 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        let v127 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(v133), Some("v2"));
        assert_eq!(aggregated_version(v127), Some("v2beta1"));
        assert_eq!(aggregated_version("application/json, */*"), None);
    }

    fn builtins() -> Vec<&'static ResourceType> {
        crate::resources::RESOURCES.iter().collect()
    }

    #[test]
    fn core_list_has_pod_subresources() {
        let list = resource_list(&builtins(), "", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"pods/eviction"));
        assert!(names.contains(&"pods/status"));
        let eviction = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .unwrap();
        assert_eq!(eviction["group"], "policy");
        assert!(resource_list(&builtins(), "apps", "v1").is_some());
        assert!(resource_list(&builtins(), "nope", "v1").is_none());
    }

    #[test]
    fn aggregated_lists_every_group() {
        let types = builtins();
        let all = aggregated(&types, false, "v2");
        let n = all["items"].as_array().unwrap().len();
        assert_eq!(n, named_groups(&types).len());
        assert_eq!(
            aggregated(&types, true, "v2beta1")["items"][0]["versions"][0]["version"],
            "v1"
        );
    }
}
