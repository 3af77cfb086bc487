//! The built-in kinds this crate knows schemas for, keyed by group, version and kind.
//!
//! Each entry names the k8s-openapi type whose `JsonSchema` implementation describes the kind.
//! k8s-openapi names every schema after the upstream Go package path
//! (`io.k8s.api.core.v1.Pod`), so the generated definitions already carry upstream names.

use k8s_openapi::{
    api, apiextensions_apiserver::pkg::apis::apiextensions, apimachinery::pkg::apis::meta,
    kube_aggregator, schemars::JsonSchema,
};
use schemars::{Schema, SchemaGenerator};

/// A kind with a schema: where it lives and how to add its schema to a generator.
pub(crate) struct BuiltinKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Adds the kind's schema (and everything it references) to the generator and returns the
    /// definition name.
    pub register: fn(&mut SchemaGenerator) -> String,
}

fn register<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    let _reference: Schema = generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

macro_rules! builtin_kinds {
    ($($group:literal $version:literal $kind:literal => $ty:ty;)*) => {
        /// Every kind with a known schema.
        pub(crate) const BUILTIN_KINDS: &[BuiltinKind] = &[
            $(BuiltinKind { group: $group, version: $version, kind: $kind, register: register::<$ty> },)*
        ];
    };
}

builtin_kinds! {
    "" "v1" "Namespace" => api::core::v1::Namespace;
    "" "v1" "Node" => api::core::v1::Node;
    "" "v1" "Pod" => api::core::v1::Pod;
    "" "v1" "Service" => api::core::v1::Service;
    "" "v1" "Endpoints" => api::core::v1::Endpoints;
    "" "v1" "ConfigMap" => api::core::v1::ConfigMap;
    "" "v1" "Secret" => api::core::v1::Secret;
    "" "v1" "ServiceAccount" => api::core::v1::ServiceAccount;
    "" "v1" "Event" => api::core::v1::Event;
    "" "v1" "LimitRange" => api::core::v1::LimitRange;
    "" "v1" "ResourceQuota" => api::core::v1::ResourceQuota;
    "" "v1" "PersistentVolume" => api::core::v1::PersistentVolume;
    "" "v1" "PersistentVolumeClaim" => api::core::v1::PersistentVolumeClaim;
    "" "v1" "PodTemplate" => api::core::v1::PodTemplate;
    "" "v1" "ReplicationController" => api::core::v1::ReplicationController;
    "" "v1" "ComponentStatus" => api::core::v1::ComponentStatus;
    "" "v1" "Binding" => api::core::v1::Binding;
    "apps" "v1" "Deployment" => api::apps::v1::Deployment;
    "apps" "v1" "ReplicaSet" => api::apps::v1::ReplicaSet;
    "apps" "v1" "StatefulSet" => api::apps::v1::StatefulSet;
    "apps" "v1" "DaemonSet" => api::apps::v1::DaemonSet;
    "apps" "v1" "ControllerRevision" => api::apps::v1::ControllerRevision;
    "batch" "v1" "Job" => api::batch::v1::Job;
    "batch" "v1" "CronJob" => api::batch::v1::CronJob;
    "coordination.k8s.io" "v1" "Lease" => api::coordination::v1::Lease;
    "events.k8s.io" "v1" "Event" => api::events::v1::Event;
    "discovery.k8s.io" "v1" "EndpointSlice" => api::discovery::v1::EndpointSlice;
    "policy" "v1" "PodDisruptionBudget" => api::policy::v1::PodDisruptionBudget;
    "policy" "v1" "Eviction" => api::policy::v1::Eviction;
    "rbac.authorization.k8s.io" "v1" "Role" => api::rbac::v1::Role;
    "rbac.authorization.k8s.io" "v1" "RoleBinding" => api::rbac::v1::RoleBinding;
    "rbac.authorization.k8s.io" "v1" "ClusterRole" => api::rbac::v1::ClusterRole;
    "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => api::rbac::v1::ClusterRoleBinding;
    "certificates.k8s.io" "v1" "CertificateSigningRequest" => api::certificates::v1::CertificateSigningRequest;
    "scheduling.k8s.io" "v1" "PriorityClass" => api::scheduling::v1::PriorityClass;
    "node.k8s.io" "v1" "RuntimeClass" => api::node::v1::RuntimeClass;
    "storage.k8s.io" "v1" "StorageClass" => api::storage::v1::StorageClass;
    "storage.k8s.io" "v1" "CSIDriver" => api::storage::v1::CSIDriver;
    "storage.k8s.io" "v1" "CSINode" => api::storage::v1::CSINode;
    "storage.k8s.io" "v1" "VolumeAttachment" => api::storage::v1::VolumeAttachment;
    "networking.k8s.io" "v1" "Ingress" => api::networking::v1::Ingress;
    "networking.k8s.io" "v1" "IngressClass" => api::networking::v1::IngressClass;
    "networking.k8s.io" "v1" "NetworkPolicy" => api::networking::v1::NetworkPolicy;
    "storage.k8s.io" "v1" "CSIStorageCapacity" => api::storage::v1::CSIStorageCapacity;
    "networking.k8s.io" "v1" "ServiceCIDR" => api::networking::v1::ServiceCIDR;
    "networking.k8s.io" "v1" "IPAddress" => api::networking::v1::IPAddress;
    "admissionregistration.k8s.io" "v1" "MutatingWebhookConfiguration" => api::admissionregistration::v1::MutatingWebhookConfiguration;
    "admissionregistration.k8s.io" "v1" "ValidatingWebhookConfiguration" => api::admissionregistration::v1::ValidatingWebhookConfiguration;
    "admissionregistration.k8s.io" "v1" "ValidatingAdmissionPolicy" => api::admissionregistration::v1::ValidatingAdmissionPolicy;
    "admissionregistration.k8s.io" "v1" "ValidatingAdmissionPolicyBinding" => api::admissionregistration::v1::ValidatingAdmissionPolicyBinding;
    "apiregistration.k8s.io" "v1" "APIService" => kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    "flowcontrol.apiserver.k8s.io" "v1" "FlowSchema" => api::flowcontrol::v1::FlowSchema;
    "flowcontrol.apiserver.k8s.io" "v1" "PriorityLevelConfiguration" => api::flowcontrol::v1::PriorityLevelConfiguration;
    "autoscaling" "v2" "HorizontalPodAutoscaler" => api::autoscaling::v2::HorizontalPodAutoscaler;
    "autoscaling" "v1" "HorizontalPodAutoscaler" => api::autoscaling::v1::HorizontalPodAutoscaler;
    "autoscaling" "v1" "Scale" => api::autoscaling::v1::Scale;
    "certificates.k8s.io" "v1" "CertificateSigningRequest" => api::certificates::v1::CertificateSigningRequest;
    "apiextensions.k8s.io" "v1" "CustomResourceDefinition" => apiextensions::v1::CustomResourceDefinition;
    "meta.k8s.io" "v1" "Status" => meta::v1::Status;
    "meta.k8s.io" "v1" "DeleteOptions" => meta::v1::DeleteOptions;
    "meta.k8s.io" "v1" "WatchEvent" => meta::v1::WatchEvent<api::core::v1::Pod>;
    "meta.k8s.io" "v1" "APIResourceList" => meta::v1::APIResourceList;
    "meta.k8s.io" "v1" "ListMeta" => meta::v1::ListMeta;
    "meta.k8s.io" "v1" "Patch" => meta::v1::Patch;
}

/// Definition names of the shared apimachinery types every document may refer to.
pub(crate) mod names {
    pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
    pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
    pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
    pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
    pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
}
