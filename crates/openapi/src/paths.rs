//! The `paths` of a group-version document: one path item per collection, object, watch and
//! subresource URL, with operations tagged the way clients look them up
//! (`x-kubernetes-action`, `x-kubernetes-group-version-kind`, the `fieldValidation` parameter).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::{
    ResourceType,
    catalog::{Catalog, schema_ref},
    kinds::names,
};

/// Collects the paths of one group-version and the definitions they refer to.
pub(crate) struct PathsBuilder<'c> {
    catalog: &'c Catalog,
    pub paths: Map<String, Value>,
    /// Definition names referenced by operations.
    pub roots: BTreeSet<String>,
}

/// Who the operation is for: a resource's type and the kind the operation's body carries.
struct Target<'r> {
    resource: &'r ResourceType<'r>,
    group: &'r str,
    version: &'r str,
    kind: &'r str,
    definition: String,
}

const OBJECT_MEDIA: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const WATCH_MEDIA: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const PATCH_MEDIA: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

impl<'c> PathsBuilder<'c> {
    pub fn new(catalog: &'c Catalog) -> Self {
        let mut roots = BTreeSet::new();
        for name in [names::STATUS, names::DELETE_OPTIONS, names::PATCH] {
            roots.insert(name.to_owned());
        }
        PathsBuilder {
            catalog,
            paths: Map::new(),
            roots,
        }
    }

    /// Adds every path of one resource type.
    pub fn add(&mut self, resource: &ResourceType<'_>) {
        let prefix = if resource.group.is_empty() {
            format!("/api/{}", resource.version)
        } else {
            format!("/apis/{}/{}", resource.group, resource.version)
        };
        let plural = resource.plural;
        let (collection, watch_collection) = if resource.namespaced {
            (
                format!("{prefix}/namespaces/{{namespace}}/{plural}"),
                format!("{prefix}/watch/namespaces/{{namespace}}/{plural}"),
            )
        } else {
            (
                format!("{prefix}/{plural}"),
                format!("{prefix}/watch/{plural}"),
            )
        };
        let item = format!("{collection}/{{name}}");
        let watch_item = format!("{watch_collection}/{{name}}");
        let has = |verb: &str| resource.verbs.contains(&verb);
        let scope = if resource.namespaced {
            "Namespaced"
        } else {
            ""
        };
        let this = self.target(resource, resource.group, resource.version, resource.kind);

        if has("list") {
            let list =
                self.catalog
                    .list_definition(resource.group, resource.version, resource.kind);
            self.roots.insert(list.clone());
            let operation = self.operation(
                &this,
                "list",
                &format!("list{scope}"),
                "",
                list_parameters(),
                None,
                &[("200", &list)],
            );
            self.put(&collection, "get", operation, resource.namespaced, false);
            if resource.namespaced {
                let operation = self.operation(
                    &this,
                    "list",
                    "list",
                    "ForAllNamespaces",
                    list_parameters(),
                    None,
                    &[("200", &list)],
                );
                self.put(
                    &format!("{prefix}/{plural}"),
                    "get",
                    operation,
                    false,
                    false,
                );
            }
        }
        if has("watch") {
            let event = names::WATCH_EVENT.to_owned();
            self.roots.insert(event.clone());
            let watch = |builder: &Self, action, verb: &str, suffix| {
                builder.operation(
                    &this,
                    action,
                    verb,
                    suffix,
                    list_parameters(),
                    None,
                    &[("200", &event)],
                )
            };
            let operation = watch(self, "watchlist", &format!("watch{scope}"), "List");
            self.put(
                &watch_collection,
                "get",
                operation,
                resource.namespaced,
                false,
            );
            let operation = watch(self, "watch", &format!("watch{scope}"), "");
            self.put(&watch_item, "get", operation, resource.namespaced, true);
            if resource.namespaced {
                let operation = watch(self, "watchlist", "watch", "ListForAllNamespaces");
                self.put(
                    &format!("{prefix}/watch/{plural}"),
                    "get",
                    operation,
                    false,
                    false,
                );
            }
        }
        let object = this.definition.clone();
        if has("create") {
            let operation = self.operation(
                &this,
                "post",
                &format!("create{scope}"),
                "",
                write_parameters(),
                Some((OBJECT_MEDIA, &object)),
                &[("200", &object), ("201", &object), ("202", &object)],
            );
            self.put(&collection, "post", operation, resource.namespaced, false);
        }
        if has("deletecollection") {
            let mut parameters = list_parameters();
            parameters.extend(delete_parameters());
            let operation = self.operation(
                &this,
                "deletecollection",
                &format!("deleteCollection{scope}"),
                "",
                parameters,
                Some((OBJECT_MEDIA, names::DELETE_OPTIONS)),
                &[("200", names::STATUS)],
            );
            self.put(&collection, "delete", operation, resource.namespaced, false);
        }
        if has("get") {
            let operation = self.operation(
                &this,
                "get",
                &format!("read{scope}"),
                "",
                vec![],
                None,
                &[("200", &object)],
            );
            self.put(&item, "get", operation, resource.namespaced, true);
        }
        if has("update") {
            self.add_update(&this, &item, &format!("replace{scope}"), "");
        }
        if has("patch") {
            self.add_patch(&this, &item, &format!("patch{scope}"), "");
        }
        if has("delete") {
            let operation = self.operation(
                &this,
                "delete",
                &format!("delete{scope}"),
                "",
                delete_parameters(),
                Some((OBJECT_MEDIA, names::DELETE_OPTIONS)),
                &[("200", &object), ("202", &object)],
            );
            self.put(&item, "delete", operation, resource.namespaced, true);
        }
        for subresource in resource.subresources {
            self.add_subresource(resource, &this, &item, scope, subresource);
        }
    }

    fn add_subresource(
        &mut self,
        resource: &ResourceType<'_>,
        this: &Target<'_>,
        item: &str,
        scope: &str,
        subresource: &str,
    ) {
        let path = format!("{item}/{subresource}");
        let suffix = camel(subresource);
        let namespaced = resource.namespaced;
        match subresource {
            "status" | "ephemeralcontainers" | "resize" | "scale" => {
                let target = if subresource == "scale" {
                    self.target(resource, "autoscaling", "v1", "Scale")
                } else {
                    self.target(resource, this.group, this.version, this.kind)
                };
                let definition = target.definition.clone();
                let operation = self.operation(
                    &target,
                    "get",
                    &format!("read{scope}"),
                    &suffix,
                    vec![],
                    None,
                    &[("200", &definition)],
                );
                self.put(&path, "get", operation, namespaced, true);
                self.add_update(&target, &path, &format!("replace{scope}"), &suffix);
                self.add_patch(&target, &path, &format!("patch{scope}"), &suffix);
            }
            "binding" | "eviction" => {
                let target = if subresource == "binding" {
                    self.target(resource, "", "v1", "Binding")
                } else {
                    self.target(resource, "policy", "v1", "Eviction")
                };
                let definition = target.definition.clone();
                let operation = self.operation(
                    &target,
                    "post",
                    &format!("create{scope}"),
                    &suffix,
                    write_parameters(),
                    Some((OBJECT_MEDIA, &definition)),
                    &[
                        ("200", &definition),
                        ("201", &definition),
                        ("202", &definition),
                    ],
                );
                self.put(&path, "post", operation, namespaced, true);
            }
            "finalize" => self.add_update(this, &path, &format!("replace{scope}"), &suffix),
            "log" => {
                let mut operation = self.operation(
                    this,
                    "get",
                    &format!("read{scope}"),
                    &suffix,
                    vec![],
                    None,
                    &[],
                );
                operation["responses"] = json!({
                    "200": { "description": "OK", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "401": { "description": "Unauthorized" },
                });
                self.put(&path, "get", operation, namespaced, true);
            }
            "exec" | "attach" | "portforward" | "proxy" => {
                let options_kind = format!("{}{}Options", this.kind, camel(subresource));
                for method in ["get", "post"] {
                    let verb = format!("connect{}{scope}", camel(method));
                    let mut operation =
                        self.operation(this, "connect", &verb, &suffix, vec![], None, &[]);
                    operation["x-kubernetes-group-version-kind"] =
                        json!({ "group": "", "kind": options_kind, "version": "v1" });
                    operation["responses"] = json!({
                        "200": { "description": "OK", "content": { "*/*": { "schema": { "type": "string" } } } },
                        "401": { "description": "Unauthorized" },
                    });
                    self.put(&path, method, operation, namespaced, true);
                }
            }
            _ => {}
        }
    }

    fn add_update(&mut self, target: &Target<'_>, path: &str, verb: &str, suffix: &str) {
        let definition = target.definition.clone();
        let operation = self.operation(
            target,
            "put",
            verb,
            suffix,
            write_parameters(),
            Some((OBJECT_MEDIA, &definition)),
            &[("200", &definition), ("201", &definition)],
        );
        self.put(path, "put", operation, target.resource.namespaced, true);
    }

    fn add_patch(&mut self, target: &Target<'_>, path: &str, verb: &str, suffix: &str) {
        let definition = target.definition.clone();
        let mut parameters = write_parameters();
        parameters.push(query("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
        let operation = self.operation(
            target,
            "patch",
            verb,
            suffix,
            parameters,
            Some((PATCH_MEDIA, names::PATCH)),
            &[("200", &definition), ("201", &definition)],
        );
        self.put(path, "patch", operation, target.resource.namespaced, true);
    }

    fn target<'r>(
        &mut self,
        resource: &'r ResourceType<'r>,
        group: &'r str,
        version: &'r str,
        kind: &'r str,
    ) -> Target<'r> {
        let definition = self.catalog.kind_definition(group, version, kind);
        self.roots.insert(definition.clone());
        Target {
            resource,
            group,
            version,
            kind,
            definition,
        }
    }

    /// One operation. `verb` and `suffix` form the operation id around the group, version and
    /// kind (`patch` + `AppsV1` + `NamespacedDeployment` + `Status`).
    #[allow(clippy::too_many_arguments)]
    fn operation(
        &self,
        target: &Target<'_>,
        action: &str,
        verb: &str,
        suffix: &str,
        parameters: Vec<Value>,
        body: Option<(&[&str], &str)>,
        responses: &[(&str, &str)],
    ) -> Value {
        let resource = target.resource;
        let (verb, scope) = match verb.strip_suffix("Namespaced") {
            Some(verb) => (verb, "Namespaced"),
            None => (verb, ""),
        };
        let operation_id = format!(
            "{verb}{}{}{scope}{}{suffix}",
            group_identifier(resource.group),
            camel(resource.version),
            resource.kind
        );
        let mut operation = json!({
            "tags": [tag(resource.group, resource.version)],
            "description": describe(action, resource.kind, suffix),
            "operationId": operation_id,
            "parameters": parameters,
            "responses": response_map(responses, action),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {
                "group": target.group,
                "kind": target.kind,
                "version": target.version,
            },
        });
        if let Some((media_types, definition)) = body {
            let content: Map<String, Value> = media_types
                .iter()
                .map(|media| {
                    (
                        (*media).to_owned(),
                        json!({ "schema": schema_ref(definition) }),
                    )
                })
                .collect();
            operation["requestBody"] = json!({ "content": content, "required": action != "delete" && action != "deletecollection" });
        }
        operation
    }

    /// Stores `operation` under `method` of the path item, with the path's own parameters.
    fn put(&mut self, path: &str, method: &str, operation: Value, namespaced: bool, named: bool) {
        let item = self.paths.entry(path).or_insert_with(|| {
            let mut parameters = Vec::new();
            if named {
                parameters.push(path_parameter("name", "name of the object"));
            }
            if namespaced {
                parameters.push(path_parameter("namespace", "object name and auth scope, such as for teams and projects"));
            }
            parameters.push(query("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."));
            json!({ "parameters": parameters })
        });
        item[method] = operation;
    }
}

fn response_map(responses: &[(&str, &str)], action: &str) -> Value {
    let media = if matches!(action, "list" | "watch" | "watchlist") {
        WATCH_MEDIA
    } else {
        OBJECT_MEDIA
    };
    let mut map = Map::new();
    for (code, definition) in responses {
        let content: Map<String, Value> = media
            .iter()
            .map(|m| ((*m).to_owned(), json!({ "schema": schema_ref(definition) })))
            .collect();
        let description = match *code {
            "201" => "Created",
            "202" => "Accepted",
            _ => "OK",
        };
        map.insert(
            (*code).to_owned(),
            json!({ "description": description, "content": content }),
        );
    }
    map.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(map)
}

fn describe(action: &str, kind: &str, suffix: &str) -> String {
    let what = if suffix.is_empty() {
        kind.to_owned()
    } else {
        format!("{} of the specified {kind}", suffix.to_lowercase())
    };
    match action {
        "get" => format!("read {what}"),
        "list" => format!("list or watch objects of kind {kind}"),
        "watch" => format!(
            "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
        ),
        "watchlist" => format!(
            "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
        ),
        "post" => format!("create {what}"),
        "put" => format!("replace {what}"),
        "patch" => format!("partially update {what}"),
        "delete" => format!("delete {what}"),
        "deletecollection" => format!("delete collection of {kind}"),
        _ => format!("connect to {what}"),
    }
}

fn tag(group: &str, version: &str) -> String {
    let group = if group.is_empty() {
        "core"
    } else {
        group.strip_suffix(".k8s.io").unwrap_or(group)
    };
    format!("{}_{version}", group.replace('.', "_"))
}

/// `""` → `Core`, `rbac.authorization.k8s.io` → `RbacAuthorization`.
fn group_identifier(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let group = group.strip_suffix(".k8s.io").unwrap_or(group);
    group.split(['.', '-']).map(camel).collect()
}

/// Upper-cases the first letter: `status` → `Status`, `portforward` → `PortForward`.
fn camel(word: &str) -> String {
    if word == "portforward" {
        return "PortForward".into();
    }
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

fn query(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": { "type": kind, "uniqueItems": true },
    })
}

fn write_parameters() -> Vec<Value> {
    vec![
        query(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        query(
            "fieldManager",
            "string",
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        ),
        query(
            "fieldValidation",
            "string",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.",
        ),
    ]
}

fn delete_parameters() -> Vec<Value> {
    vec![
        query(
            "dryRun",
            "string",
            "When present, indicates that modifications should not be persisted.",
        ),
        query(
            "gracePeriodSeconds",
            "integer",
            "The duration in seconds before the object should be deleted. The value zero indicates delete immediately.",
        ),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
            "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.",
        ),
        query(
            "orphanDependents",
            "boolean",
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned.",
        ),
        query(
            "propagationPolicy",
            "string",
            "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
        ),
    ]
}

fn list_parameters() -> Vec<Value> {
    vec![
        query(
            "allowWatchBookmarks",
            "boolean",
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag.",
        ),
        query(
            "continue",
            "string",
            "The continue option should be set when retrieving more results from the server.",
        ),
        query(
            "fieldSelector",
            "string",
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        query(
            "labelSelector",
            "string",
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        query(
            "limit",
            "integer",
            "limit is a maximum number of responses to return for a list call.",
        ),
        query(
            "resourceVersion",
            "string",
            "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset.",
        ),
        query(
            "resourceVersionMatch",
            "string",
            "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        ),
        query(
            "sendInitialEvents",
            "boolean",
            "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection.",
        ),
        query(
            "timeoutSeconds",
            "integer",
            "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        ),
        query(
            "watch",
            "boolean",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        ),
    ]
}
