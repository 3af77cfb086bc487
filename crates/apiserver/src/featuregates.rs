//! `--feature-gates`: kube-apiserver 1.33's feature gates (name, stage, default, locked) and
//! the parsing of `Name=bool,...` with kube's messages. The gates are recorded; the server
//! reads them where a gate changes what it serves.

use std::collections::BTreeMap;

/// kube-apiserver 1.33's gates, one per line: `Name Stage default [locked]`.
const GATES: &str = "\
AllAlpha Alpha false
AllBeta Beta false
AggregatedDiscoveryRemoveBetaType Deprecated true
AllowDNSOnlyNodeCSR Deprecated false
AllowInsecureKubeletCertificateSigningRequests Deprecated false
AllowOverwriteTerminationGracePeriodSeconds Deprecated false
AllowParsingUserUIDFromCertAuth Beta true
AllowServiceLBStatusOnNonLB Deprecated false locked
AllowUnsafeMalformedObjectDeletion Alpha false
AnonymousAuthConfigurableEndpoints Beta true
AnyVolumeDataSource GA true locked
APIResponseCompression Beta true
APIServerIdentity Beta true
APIServerTracing Beta true
APIServingWithRoutine Alpha false
AuthorizeNodeWithSelectors Beta true
AuthorizeWithSelectors Beta true
BtreeWatchCache GA true locked
CBORServingAndStorage Alpha false
ClientsAllowCBOR Alpha false
ClientsPreferCBOR Alpha false
CloudControllerManagerWebhook Alpha false
ClusterTrustBundle Beta false
ClusterTrustBundleProjection Beta false
ComponentFlagz Alpha false
ComponentSLIs GA true locked
ComponentStatusz Alpha false
ConcurrentWatchObjectDecode Beta false
ConsistentListFromCache Beta true
ContainerCheckpoint Beta true
ContainerStopSignals Alpha false
ContextualLogging Beta true
CoordinatedLeaderElection Beta false
CPUCFSQuotaPeriod Alpha false
CPUManagerPolicyAlphaOptions Alpha false
CPUManagerPolicyBetaOptions Beta true
CPUManagerPolicyOptions GA true locked
CRDValidationRatcheting GA true locked
CronJobsScheduledAnnotation GA true locked
CrossNamespaceVolumeDataSource Alpha false
CSIMigrationPortworx GA true locked
CSIVolumeHealth Alpha false
CustomResourceFieldSelectors GA true locked
DeclarativeValidation Beta true
DeclarativeValidationTakeover Beta false
DeploymentReplicaSetTerminatingReplicas Alpha false
DevicePluginCDIDevices GA true locked
DisableAllocatorDualWrite Beta false
DisableCPUQuotaWithExclusiveCPUs Beta true
DisableNodeKubeProxyVersion Deprecated true
DRAAdminAccess Alpha false
DRADeviceTaints Alpha false
DRAPartitionableDevices Alpha false
DRAPrioritizedList Alpha false
DRAResourceClaimDeviceStatus Beta true
DynamicResourceAllocation Beta false
EventedPLEG Alpha false
ExecProbeTimeout GA true
ExternalServiceAccountTokenSigner Alpha false
GitRepoVolumeDriver Deprecated false
GracefulNodeShutdown Beta true
GracefulNodeShutdownBasedOnPodPriority Beta true
HonorPVReclaimPolicy GA true locked
HPAConfigurableTolerance Alpha false
HPAScaleToZero Alpha false
ImageMaximumGCAge Beta true
ImageVolume Beta false
InformerResourceVersion Alpha false
InOrderInformers Beta true
InPlacePodVerticalScaling Beta true
InPlacePodVerticalScalingAllocatedStatus Deprecated false
InPlacePodVerticalScalingExclusiveCPUs Alpha false
InTreePluginPortworxUnregister Alpha false
JobBackoffLimitPerIndex GA true locked
JobManagedBy Beta true
JobPodReplacementPolicy Beta true
JobSuccessPolicy GA true locked
KMSv1 Deprecated false
KubeletCgroupDriverFromCRI Beta true
KubeletCrashLoopBackOffMax Alpha false
KubeletEnsureSecretPulledImages Alpha false
KubeletFineGrainedAuthz Beta true
KubeletInUserNamespace Alpha false
KubeletPodResourcesDynamicResources Alpha false
KubeletPodResourcesGet Alpha false
KubeletPodResourcesListUseActivePods GA false
KubeletPSI Alpha false
KubeletRegistrationGetOnExistsOnly Deprecated false
KubeletSeparateDiskGC Beta true
KubeletServiceAccountTokenForCredentialProviders Alpha false
KubeletTracing Beta true
LegacySidecarContainers Deprecated false
ListFromCacheSnapshot Alpha false
LoadBalancerIPMode GA true locked
LocalStorageCapacityIsolationFSQuotaMonitoring Beta false
LogarithmicScaleDown GA true locked
LoggingAlphaOptions Alpha false
LoggingBetaOptions Beta true
MatchLabelKeysInPodAffinity GA true locked
MatchLabelKeysInPodTopologySpread Beta true
MaxUnavailableStatefulSet Alpha false
MemoryManager GA true locked
MemoryQoS Alpha false
MultiCIDRServiceAllocator GA true
MutableCSINodeAllocatableCount Alpha false
MutatingAdmissionPolicy Alpha false
NFTablesProxyMode GA true locked
NodeInclusionPolicyInPodTopologySpread GA true locked
NodeLogQuery Beta false
NodeSwap Beta true
OpenAPIEnums Beta true
OrderedNamespaceDeletion Beta true
PodAndContainerStatsFromCRI Alpha false
PodDeletionCost Beta true
PodIndexLabel GA true locked
PodLevelResources Alpha false
PodLifecycleSleepAction Beta true
PodLifecycleSleepActionAllowZero Beta true
PodLogsQuerySplitStreams Alpha false
PodObservedGenerationTracking Alpha false
PodReadyToStartContainersCondition Beta true
PodSchedulingReadiness GA true locked
PodTopologyLabelsAdmission Alpha false
PortForwardWebsockets Beta true
PreferSameTrafficDistribution Alpha false
ProcMountType Beta true
QOSReserved Alpha false
RecoverVolumeExpansionFailure Beta true
RecursiveReadOnlyMounts GA true locked
ReduceDefaultCrashLoopBackOffDecay Alpha false
RelaxedDNSSearchValidation Beta true
RelaxedEnvironmentVariableValidation Beta true
ReloadKubeletServerCertificateFile Beta true
RemoteRequestHeaderUID Beta true
ResilientWatchCacheInitialization Beta true
ResourceHealthStatus Alpha false
RetryGenerateName GA true locked
RotateKubeletServerCertificate Beta true
RuntimeClassInImageCriAPI Alpha false
SchedulerAsyncPreemption Beta true
SchedulerPopFromBackoffQ Beta true
SchedulerQueueingHints Beta true
SELinuxChangePolicy Beta true
SELinuxMount Beta false
SELinuxMountReadWriteOncePod Beta true
SeparateCacheWatchRPC Deprecated false
SeparateTaintEvictionController Beta true
ServiceAccountNodeAudienceRestriction Beta true
ServiceAccountTokenJTI GA true locked
ServiceAccountTokenNodeBinding GA true locked
ServiceAccountTokenNodeBindingValidation GA true locked
ServiceAccountTokenPodNodeInfo GA true locked
ServiceTrafficDistribution GA true locked
SidecarContainers GA true locked
SizeMemoryBackedVolumes GA true locked
StatefulSetAutoDeletePVC GA true locked
StorageCapacityScoring Alpha false
StorageNamespaceIndex Deprecated true
StorageVersionAPI Alpha false
StorageVersionHash Beta true
StorageVersionMigrator Alpha false
StreamingCollectionEncodingToJSON Beta true
StreamingCollectionEncodingToProtobuf Beta true
StrictCostEnforcementForVAP GA true locked
StrictCostEnforcementForWebhooks GA true locked
StrictIPCIDRValidation Alpha false
StructuredAuthenticationConfiguration Beta true
StructuredAuthorizationConfiguration GA true locked
SupplementalGroupsPolicy Beta true
SystemdWatchdog Beta true
TopologyAwareHints GA true locked
TopologyManagerPolicyAlphaOptions Alpha false
TopologyManagerPolicyBetaOptions Beta true
TopologyManagerPolicyOptions GA true
TranslateStreamCloseWebsocketRequests Beta true
UnauthenticatedHTTP2DOSMitigation Beta true
UnknownVersionInteroperabilityProxy Alpha false
UserNamespacesPodSecurityStandards Alpha false
UserNamespacesSupport Beta true
VolumeAttributesClass Beta false
WatchCacheInitializationPostStartHook Beta false
WatchFromStorageWithoutResourceVersion Deprecated false locked
WatchList Beta false
WatchListClient Beta false
WindowsCPUAndMemoryAffinity Alpha false
WindowsGracefulNodeShutdown Alpha false
WindowsHostNetwork Deprecated false
WinDSR Beta true
WinOverlay Beta true
";

/// One known gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    pub name: &'static str,
    pub stage: &'static str,
    pub default: bool,
    pub locked: bool,
}

/// Every gate kube-apiserver 1.33 knows.
pub fn known() -> impl Iterator<Item = Gate> {
    GATES.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        Some(Gate {
            name: words.next()?,
            stage: words.next()?,
            default: words.next()? == "true",
            locked: words.next() == Some("locked"),
        })
    })
}

/// The value of each gate: defaults, overridden by `--feature-gates`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureGates {
    set: BTreeMap<String, bool>,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl FeatureGates {
    /// Reads `Name=bool,...` with kube-apiserver's messages.
    pub fn parse(text: &str) -> Result<Self, String> {
        let wrap =
            |e: String| format!("invalid argument {text:?} for \"--feature-gates\" flag: {e}");
        let mut gates = Self::default();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = match pair.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => return Err(wrap(format!("missing bool value for {pair}"))),
            };
            let on = parse_bool(value).ok_or_else(|| {
                wrap(format!(
                    "invalid value of {name}={value}, err: strconv.ParseBool: parsing {value:?}: invalid syntax"
                ))
            })?;
            gates.set(name, on).map_err(wrap)?;
        }
        Ok(gates)
    }

    fn set(&mut self, name: &str, on: bool) -> Result<(), String> {
        let gate = known()
            .find(|g| g.name == name)
            .ok_or_else(|| format!("unrecognized feature gate: {name}"))?;
        if gate.locked && on != gate.default {
            return Err(format!(
                "cannot set feature gate {name} to {on}, feature is locked to {}",
                gate.default
            ));
        }
        self.set.insert(name.to_string(), on);
        Ok(())
    }

    /// Whether a gate is on; `AllAlpha`/`AllBeta` turn on unset gates of their stage.
    pub fn enabled(&self, name: &str) -> bool {
        if let Some(on) = self.set.get(name) {
            return *on;
        }
        let Some(gate) = known().find(|g| g.name == name) else {
            return false;
        };
        let all = |stage: &str| {
            gate.stage == stage && self.set.get(&format!("All{stage}")) == Some(&true)
        };
        gate.default || (!gate.locked && (all("Alpha") || all("Beta")))
    }

    /// The gates set explicitly, as given.
    pub fn overrides(&self) -> &BTreeMap<String, bool> {
        &self.set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_messages_for_bad_gates() {
        let unknown = FeatureGates::parse("Foo=true").unwrap_err();
        assert!(
            unknown.ends_with("unrecognized feature gate: Foo"),
            "{unknown}"
        );
        let locked = FeatureGates::parse("SidecarContainers=false").unwrap_err();
        assert!(
            locked.ends_with(
                "cannot set feature gate SidecarContainers to false, feature is locked to true"
            ),
            "{locked}"
        );
        let value = FeatureGates::parse("WatchList=maybe").unwrap_err();
        assert!(
            value.ends_with(
                "invalid value of WatchList=maybe, err: strconv.ParseBool: parsing \"maybe\": invalid syntax"
            ),
            "{value}"
        );
        assert!(
            FeatureGates::parse("WatchList")
                .unwrap_err()
                .ends_with("missing bool value for WatchList")
        );
    }

    #[test]
    fn overrides_defaults_and_all_alpha() {
        let gates =
            FeatureGates::parse(" WatchList=true, JobManagedBy=false,AllAlpha=true").unwrap();
        assert!(gates.enabled("WatchList") && !gates.enabled("JobManagedBy"));
        assert!(
            gates.enabled("HPAScaleToZero"),
            "AllAlpha turns on alpha gates"
        );
        assert!(
            !gates.enabled("ClusterTrustBundle"),
            "beta gates stay at their default"
        );
        assert!(FeatureGates::default().enabled("SidecarContainers"));
        assert!(known().count() > 150);
    }
}
