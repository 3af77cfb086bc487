//! The registry of built-in resource types: scope, verbs, names, subresources and the per-kind
//! rules the REST layer applies.

/// Verbs of an ordinary read-write resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One resource type served by the API server.
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [&'static str],
    /// Whether `metadata.generation` tracks changes to the desired state.
    pub generation: bool,
    /// Set for types served from a CustomResourceDefinition.
    pub custom: Option<&'static crate::crd::CustomType>,
}

impl ResourceType {
    /// Reviews are answered, never stored: they only support `create`.
    pub fn is_review(&self) -> bool {
        matches!(self.group, "authorization.k8s.io" | "authentication.k8s.io")
    }

    /// Resource metrics are sampled, never stored: they only support `get` and `list`.
    pub fn is_metrics(&self) -> bool {
        self.group == crate::resourcemetrics::GROUP
    }

    /// The verbs of a core type answered without being stored, if this is one.
    fn answered_verbs(&self) -> Option<&'static [&'static str]> {
        ANSWERED_CORE
            .iter()
            .find(|(plural, _)| {
                self.group.is_empty() && self.custom.is_none() && *plural == self.plural
            })
            .map(|(_, verbs)| *verbs)
    }

    /// Component statuses are synthesized, never stored: they only support `get` and `list`.
    pub fn is_component_status(&self) -> bool {
        self.group.is_empty() && self.plural == "componentstatuses"
    }

    /// Whether objects of this type live in the store.
    pub fn is_stored(&self) -> bool {
        !self.is_review() && !self.is_metrics() && self.answered_verbs().is_none()
    }

    /// The verbs this type supports.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.is_metrics() {
            crate::resourcemetrics::VERBS
        } else if self.is_review() {
            &["create"]
        } else {
            self.answered_verbs().unwrap_or(ALL_VERBS)
        }
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `deployments.apps`, as used in error messages.
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The store key prefix of all objects of this type.
    ///
    /// The layout is kube-apiserver's, so that a store shared with it, or read with `etcdctl`,
    /// looks as users expect: built-in types under their resource name (with kube-apiserver's
    /// historical names for nodes, services, endpoints and replication controllers), CRDs and
    /// custom resources under `<group>/<resource>`. Events of `events.k8s.io` are stored apart
    /// from core events because the two are kept in their own versions here.
    pub fn key_prefix(&self) -> String {
        let resource = match (self.group, self.plural) {
            ("", "nodes") => "minions",
            ("", "services") => "services/specs",
            ("", "endpoints") => "services/endpoints",
            ("", "replicationcontrollers") => "controllers",
            ("networking.k8s.io", "ingresses") => "ingress",
            ("apiregistration.k8s.io", _) => {
                return format!("/registry/{}/{}/", self.group, self.plural);
            }
            ("events.k8s.io", _) | ("apiextensions.k8s.io", _) => {
                return format!("/registry/{}/{}/", self.group, self.plural);
            }
            (_, plural) if self.custom.is_none() => plural,
            _ => return format!("/registry/{}/{}/", self.group, self.plural),
        };
        format!("/registry/{resource}/")
    }

    /// Store key of one object (or, with `name` empty, the prefix of a namespace's objects).
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        let mut key = self.key_prefix();
        if self.namespaced {
            key.push_str(namespace.unwrap_or(""));
            key.push('/');
        }
        key.push_str(name);
        key
    }
}

/// Core types that are answered rather than stored, with their verbs: pod bindings (the
/// legacy `bindings` collection, which binds a pod as its `binding` subresource does) and the
/// synthesized component statuses.
const ANSWERED_CORE: &[(&str, &[&str])] = &[
    ("bindings", &["create"]),
    ("componentstatuses", &["get", "list"]),
];

macro_rules! resource {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, namespaced: $ns:expr,
     short: [$($short:expr),*], categories: [$($cat:expr),*], sub: [$($sub:expr),*], generation: $gen:expr) => {
        ResourceType {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$($sub),*],
            generation: $gen,
            custom: None,
        }
    };
}

/// Every built-in resource type, grouped by group-version in discovery order.
pub static RESOURCES: &[ResourceType] = &[
    resource!("", "v1", "Binding", "bindings", "binding", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("", "v1", "ComponentStatus", "componentstatuses", "componentstatus", namespaced: false, short: ["cs"], categories: [], sub: [], generation: false),
    resource!("", "v1", "Namespace", "namespaces", "namespace", namespaced: false, short: ["ns"], categories: [], sub: ["status", "finalize"], generation: false),
    resource!("", "v1", "Node", "nodes", "node", namespaced: false, short: ["no"], categories: [], sub: ["status", "proxy"], generation: false),
    resource!("", "v1", "Pod", "pods", "pod", namespaced: true, short: ["po"], categories: ["all"], sub: ["status", "binding", "eviction", "log", "exec", "attach", "portforward", "proxy", "ephemeralcontainers", "resize"], generation: true),
    resource!("", "v1", "Service", "services", "service", namespaced: true, short: ["svc"], categories: ["all"], sub: ["status", "proxy"], generation: false),
    resource!("", "v1", "Endpoints", "endpoints", "endpoints", namespaced: true, short: ["ep"], categories: [], sub: [], generation: false),
    resource!("", "v1", "ConfigMap", "configmaps", "configmap", namespaced: true, short: ["cm"], categories: [], sub: [], generation: false),
    resource!("", "v1", "Secret", "secrets", "secret", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", namespaced: true, short: ["sa"], categories: [], sub: ["token"], generation: false),
    resource!("", "v1", "Event", "events", "event", namespaced: true, short: ["ev"], categories: [], sub: [], generation: false),
    resource!("", "v1", "LimitRange", "limitranges", "limitrange", namespaced: true, short: ["limits"], categories: [], sub: [], generation: false),
    resource!("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", namespaced: true, short: ["quota"], categories: [], sub: ["status"], generation: false),
    resource!("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", namespaced: false, short: ["pv"], categories: [], sub: ["status"], generation: false),
    resource!("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", namespaced: true, short: ["pvc"], categories: [], sub: ["status"], generation: false),
    resource!("", "v1", "PodTemplate", "podtemplates", "podtemplate", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", namespaced: true, short: ["rc"], categories: ["all"], sub: ["status", "scale"], generation: true),
    resource!("apps", "v1", "Deployment", "deployments", "deployment", namespaced: true, short: ["deploy"], categories: ["all"], sub: ["status", "scale"], generation: true),
    resource!("apps", "v1", "ReplicaSet", "replicasets", "replicaset", namespaced: true, short: ["rs"], categories: ["all"], sub: ["status", "scale"], generation: true),
    resource!("apps", "v1", "StatefulSet", "statefulsets", "statefulset", namespaced: true, short: ["sts"], categories: ["all"], sub: ["status", "scale"], generation: true),
    resource!("apps", "v1", "DaemonSet", "daemonsets", "daemonset", namespaced: true, short: ["ds"], categories: ["all"], sub: ["status"], generation: true),
    resource!("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("batch", "v1", "Job", "jobs", "job", namespaced: true, short: [], categories: ["all"], sub: ["status"], generation: true),
    resource!("batch", "v1", "CronJob", "cronjobs", "cronjob", namespaced: true, short: ["cj"], categories: ["all"], sub: ["status"], generation: true),
    resource!("coordination.k8s.io", "v1", "Lease", "leases", "lease", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("events.k8s.io", "v1", "Event", "events", "event", namespaced: true, short: ["ev"], categories: [], sub: [], generation: false),
    resource!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", namespaced: true, short: ["pdb"], categories: [], sub: ["status"], generation: true),
    resource!("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", "certificatesigningrequest", namespaced: false, short: ["csr"], categories: [], sub: ["status", "approval"], generation: true),
    resource!("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", namespaced: false, short: ["pc"], categories: [], sub: [], generation: false),
    resource!("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", "runtimeclass", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", namespaced: false, short: ["sc"], categories: [], sub: [], generation: false),
    resource!("storage.k8s.io", "v1", "CSIDriver", "csidrivers", "csidriver", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("storage.k8s.io", "v1", "CSINode", "csinodes", "csinode", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities", "csistoragecapacity", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", "volumeattachment", namespaced: false, short: [], categories: [], sub: ["status"], generation: false),
    resource!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", namespaced: true, short: ["ing"], categories: [], sub: ["status"], generation: true),
    resource!("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", namespaced: true, short: ["netpol"], categories: [], sub: [], generation: true),
    resource!("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs", "servicecidr", namespaced: false, short: [], categories: [], sub: ["status"], generation: false),
    resource!("networking.k8s.io", "v1", "IPAddress", "ipaddresses", "ipaddress", namespaced: false, short: ["ip"], categories: [], sub: [], generation: false),
    resource!("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", "mutatingwebhookconfiguration", namespaced: false, short: [], categories: ["api-extensions"], sub: [], generation: true),
    resource!("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", "validatingwebhookconfiguration", namespaced: false, short: [], categories: ["api-extensions"], sub: [], generation: true),
    resource!("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", "validatingadmissionpolicy", namespaced: false, short: [], categories: ["api-extensions"], sub: ["status"], generation: true),
    resource!("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", "validatingadmissionpolicybinding", namespaced: false, short: [], categories: ["api-extensions"], sub: [], generation: true),
    resource!("apiregistration.k8s.io", "v1", "APIService", "apiservices", "apiservice", namespaced: false, short: [], categories: ["api-extensions"], sub: ["status"], generation: false),
    resource!("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", "flowschema", namespaced: false, short: [], categories: [], sub: ["status"], generation: true),
    resource!("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", "prioritylevelconfiguration", namespaced: false, short: [], categories: [], sub: ["status"], generation: true),
    resource!("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", "customresourcedefinition", namespaced: false, short: ["crd", "crds"], categories: ["api-extensions"], sub: ["status"], generation: true),
    resource!("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", "selfsubjectaccessreview", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews", "selfsubjectrulesreview", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", "subjectaccessreview", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", "localsubjectaccessreview", namespaced: true, short: [], categories: [], sub: [], generation: false),
    resource!("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", namespaced: false, short: [], categories: [], sub: [], generation: false),
    resource!("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", namespaced: true, short: ["hpa"], categories: ["all"], sub: ["status"], generation: true),
];

/// Looks up a resource by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks up a resource by group and kind.
pub fn find_kind(group: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// The served group-versions of built-in types, in discovery order (core first).
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    group_versions_of(&RESOURCES.iter().collect::<Vec<_>>())
}

/// The group-versions of `types`, in order of first appearance.
pub fn group_versions_of(types: &[&'static ResourceType]) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in types {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The namespaces that always exist.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// What a subresource returns and accepts.
pub fn subresource_kind(r: &ResourceType, sub: &str) -> (&'static str, &'static str, &'static str) {
    match sub {
        "scale" => ("autoscaling", "v1", "Scale"),
        "eviction" => ("policy", "v1", "Eviction"),
        "binding" => ("", "v1", "Binding"),
        "token" => ("authentication.k8s.io", "v1", "TokenRequest"),
        "exec" => ("", "v1", "PodExecOptions"),
        "attach" => ("", "v1", "PodAttachOptions"),
        "portforward" => ("", "v1", "PodPortForwardOptions"),
        "proxy" => match r.kind {
            "Pod" => ("", "v1", "PodProxyOptions"),
            "Node" => ("", "v1", "NodeProxyOptions"),
            "Service" => ("", "v1", "ServiceProxyOptions"),
            _ => (r.group, r.version, r.kind),
        },
        _ => (r.group, r.version, r.kind),
    }
}

/// Verbs of a subresource.
pub fn subresource_verbs(sub: &str) -> &'static [&'static str] {
    match sub {
        "status" | "scale" | "ephemeralcontainers" | "resize" => &["get", "patch", "update"],
        "binding" | "eviction" | "token" => &["create"],
        "exec" | "attach" | "portforward" => &["create", "get"],
        "finalize" => &["update"],
        "log" => &["get"],
        "proxy" => &["create", "delete", "get", "patch", "update"],
        _ => &["get"],
    }
}
