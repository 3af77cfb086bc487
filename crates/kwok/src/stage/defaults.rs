//! The built-in Stage sets, written in upstream's Stage file format.
//!
//! * `fast` (the default): nodes become Ready at once and keep heartbeating (with leases, the
//!   node status is refreshed rarely); pods become Running at once, Job pods succeed, pods being
//!   deleted are removed.
//! * `general`: a more realistic pod lifecycle (events, init containers one after the other)
//!   with delays of one to five seconds, overridable per pod with annotations
//!   `<stage>.stage.kwok.x-k8s.io/delay` and `.../jitter-delay` (Go durations) or `.../weight`.
//! * `chaos`: opt-in failures. Label a node `node-not-ready.stage.kwok.x-k8s.io: "true"` to make
//!   it NotReady, or a pod `pod-container-running-failed.stage.kwok.x-k8s.io: "true"` to make
//!   its containers fail.

use super::stages_from_yaml;
use super::types::Stage;

/// The names of the built-in sets.
pub const SETS: &[&str] = &["fast", "general", "chaos"];

const NODE_STATUS: &str = r#"
      {{ $now := Now }}
      {{ $since := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $since | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}
      addresses:
      {{ with .status.addresses }}
      {{ YAML . 1 }}
      {{ else }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}
      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
"#;

const NODE_INITIALIZE_EXTRA: &str = r#"
      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      nodeInfo:
      {{ with .status.nodeInfo }}
      {{ YAML . 1 }}
      {{ else }}
        architecture: amd64
        bootID: ""
        containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
        kernelVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
        kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
        machineID: ""
        operatingSystem: linux
        osImage: ""
        systemUUID: ""
      {{ end }}
      phase: Running
"#;

fn node_stages(lease: bool) -> String {
    let ready_not_true = r#"
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]"#;
    let ready_true = r#"
    - key: '.status.phase'
      operator: In
      values: ["Running"]
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: In
      values: ["True"]"#;
    let (hb_name, delay, jitter) = if lease {
        ("node-heartbeat-with-lease", 600000, 610000)
    } else {
        ("node-heartbeat", 20000, 25000)
    };
    format!(
        r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:{ready_not_true}
  next:
    statusTemplate: |{NODE_STATUS}{NODE_INITIALIZE_EXTRA}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: {hb_name}
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:{ready_true}
  delay:
    durationMilliseconds: {delay}
    jitterDurationMilliseconds: {jitter}
  next:
    statusTemplate: |{NODE_STATUS}
  immediateNextStage: true
"#
    )
}

const POD_READY_STATUS: &str = r#"
      {{ $now := Now }}
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: PodScheduled
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        imageID: ""
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      {{ if eq (or .restartPolicy "") "Always" }}
      - image: {{ .image | Quote }}
        imageID: ""
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ else }}
      - image: {{ .image | Quote }}
        imageID: ""
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      hostIPs:
      {{ range NodeIPsWith .spec.nodeName }}
      - ip: {{ . | Quote }}
      {{ end }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      podIPs:
      {{ range PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      - ip: {{ . | Quote }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
"#;

const POD_COMPLETE_STATUS: &str = r#"
      {{ $now := Now }}
      {{ $root := . }}
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: PodCompleted
        type: Ready
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: PodCompleted
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        imageID: ""
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ or $root.status.startTime $now | Quote }}
      {{ end }}
      phase: Succeeded
"#;

fn fast_pod_stages() -> String {
    format!(
        r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Pending"]
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |{POD_READY_STATUS}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Running"]
    - key: '.metadata.ownerReferences.[].kind'
      operator: In
      values: ["Job"]
  next:
    statusTemplate: |{POD_COMPLETE_STATUS}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: Exists
  next:
    delete: true
"#
    )
}

fn general_delay(stage: &str) -> String {
    format!(
        r#"
  weightFrom:
    expressionFrom: '.metadata.annotations["{stage}.stage.kwok.x-k8s.io/weight"]'
  delay:
    durationMilliseconds: 1000
    durationFrom:
      expressionFrom: '.metadata.annotations["{stage}.stage.kwok.x-k8s.io/delay"]'
    jitterDurationMilliseconds: 5000
    jitterDurationFrom:
      expressionFrom: '.metadata.annotations["{stage}.stage.kwok.x-k8s.io/jitter-delay"]'"#
    )
}

fn general_pod_stages() -> String {
    let created = general_delay("pod-create");
    let init_done = general_delay("pod-init-container-completed");
    let ready = general_delay("pod-ready");
    let complete = general_delay("pod-complete");
    let delete = general_delay("pod-delete");
    format!(
        r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-create
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.podIP'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Pending"]
  weight: 1{created}
  next:
    event:
      type: Normal
      reason: Created
      message: Created container
    statusTemplate: |
      {{{{ $now := Now }}}}
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: PodScheduled
      {{{{ if .spec.initContainers }}}}
      - lastProbeTime: null
        lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotInitialized
        type: Initialized
      initContainerStatuses:
      {{{{ range .spec.initContainers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: false
        restartCount: 0
        started: false
        state:
          waiting:
            reason: PodInitializing
      {{{{ end }}}}
      {{{{ end }}}}
      containerStatuses:
      {{{{ range .spec.containers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: false
        restartCount: 0
        started: false
        state:
          waiting:
            reason: ContainerCreating
      {{{{ end }}}}
      hostIP: {{{{ NodeIPWith .spec.nodeName | Quote }}}}
      hostIPs:
      {{{{ range NodeIPsWith .spec.nodeName }}}}
      - ip: {{{{ . | Quote }}}}
      {{{{ end }}}}
      podIP: {{{{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}}}
      podIPs:
      {{{{ range PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}}}
      - ip: {{{{ . | Quote }}}}
      {{{{ end }}}}
      startTime: {{{{ $now | Quote }}}}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-init-container-completed
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Pending"]
    - key: '.status.conditions.[] | select( .type == "Initialized" ) | .status'
      operator: In
      values: ["False"]
  weight: 1{init_done}
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{{{ $now | Quote }}}}
        status: "True"
        type: Initialized
      initContainerStatuses:
      {{{{ range .spec.initContainers }}}}
      - image: {{{{ .image | Quote }}}}
        name: {{{{ .name | Quote }}}}
        ready: true
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{{{ $now | Quote }}}}
            reason: Completed
            startedAt: {{{{ $now | Quote }}}}
      {{{{ end }}}}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Pending"]
    - key: '.status.podIP'
      operator: Exists
    - key: '.status.conditions.[] | select( .type == "Initialized" ) | .status'
      operator: NotIn
      values: ["False"]
  weight: 1{ready}
  next:
    event:
      type: Normal
      reason: Started
      message: Started container
    statusTemplate: |{POD_READY_STATUS}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Running"]
    - key: '.metadata.ownerReferences.[].kind'
      operator: In
      values: ["Job"]
  weight: 1{complete}
  next:
    statusTemplate: |{POD_COMPLETE_STATUS}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: Exists
    - key: '.metadata.finalizers'
      operator: DoesNotExist
  weight: 1{delete}
  next:
    delete: true
"#
    )
}

const CHAOS: &str = r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-not-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchLabels:
      node-not-ready.stage.kwok.x-k8s.io: "true"
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: In
      values: ["True"]
  weight: 10000
  weightFrom:
    expressionFrom: '.metadata.annotations["node-not-ready.stage.kwok.x-k8s.io/weight"]'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $ann := or .metadata.annotations dict }}
      conditions:
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
        message: {{ or (index $ann "node-not-ready.stage.kwok.x-k8s.io/message") "node failed" | Quote }}
        reason: {{ or (index $ann "node-not-ready.stage.kwok.x-k8s.io/reason") "nodeFailed" | Quote }}
        status: "False"
        type: {{ or (index $ann "node-not-ready.stage.kwok.x-k8s.io/type") "Ready" | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-container-running-failed
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchLabels:
      pod-container-running-failed.stage.kwok.x-k8s.io: "true"
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ["Running"]
  weight: 10000
  weightFrom:
    expressionFrom: '.metadata.annotations["pod-container-running-failed.stage.kwok.x-k8s.io/weight"]'
  next:
    event:
      type: Warning
      reason: Failed
      message: Container failed
    statusTemplate: |
      {{ $now := Now }}
      {{ $ann := or .metadata.annotations dict }}
      {{ $root := . }}
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: Ready
      - lastProbeTime: null
        lastTransitionTime: {{ $now | Quote }}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {{ or (index $ann "pod-container-running-failed.stage.kwok.x-k8s.io/exit-code") 1 }}
            finishedAt: {{ $now | Quote }}
            reason: {{ or (index $ann "pod-container-running-failed.stage.kwok.x-k8s.io/reason") "Error" | Quote }}
            message: {{ or (index $ann "pod-container-running-failed.stage.kwok.x-k8s.io/message") "container failed" | Quote }}
            startedAt: {{ or $root.status.startTime $now | Quote }}
      {{ end }}
      phase: Failed
"#;

/// The Stages of a built-in set. `lease` picks the node heartbeat that suits node leases.
pub fn stage_set(name: &str, lease: bool) -> Result<Vec<Stage>, String> {
    let text = match name {
        "fast" | "default" => format!("{}\n---\n{}", node_stages(lease), fast_pod_stages()),
        "general" => format!("{}\n---\n{}", node_stages(lease), general_pod_stages()),
        "chaos" => CHAOS.to_string(),
        other => {
            return Err(format!(
                "unknown stage set {other:?} (known: {})",
                SETS.join(", ")
            ));
        }
    };
    stages_from_yaml(&text)
}

/// The default Stages: the `fast` set.
pub fn default_stages(lease: bool) -> Vec<Stage> {
    stage_set("fast", lease).expect("the built-in stages parse")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::compile;

    #[test]
    fn every_builtin_stage_compiles() {
        for set in SETS {
            for lease in [false, true] {
                let stages = stage_set(set, lease).unwrap();
                assert!(!stages.is_empty());
                for s in &stages {
                    compile(s).unwrap_or_else(|e| panic!("{set}: {e}"));
                }
            }
        }
        let names: Vec<String> = default_stages(true)
            .into_iter()
            .map(|s| s.metadata.name)
            .collect();
        assert_eq!(
            names,
            [
                "node-initialize",
                "node-heartbeat-with-lease",
                "pod-ready",
                "pod-complete",
                "pod-delete"
            ]
        );
    }
}
