//! Tests of reading `KubeSchedulerConfiguration` documents: defaults, merging, weights,
//! arguments and kube-scheduler's error messages.

use super::*;
use serde_json::json;

fn config(extra: Value) -> Value {
    let mut doc = json!({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"});
    if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
        d.extend(e);
    }
    doc
}

fn one(profile: Value) -> Result<Profile, String> {
    parse(&config(json!({"profiles": [profile]}))).map(|c| c.profiles[0].clone())
}

#[test]
fn no_profiles_give_the_default_profile() {
    let c = parse(&config(json!({}))).unwrap();
    assert_eq!(c.profiles.len(), 1);
    let p = &c.profiles[0];
    assert_eq!(p.name, "default-scheduler");
    assert_eq!(p.filters, Filters::ALL);
    assert_eq!(p.weights, Weights::DEFAULT);
    assert!(p.preemption && p.default_scoring);
    assert_eq!(p.percentage, 0);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // v1beta3 is read the same way.
    let mut old = config(json!({}));
    old["apiVersion"] = json!("kubescheduler.config.k8s.io/v1beta3");
    assert_eq!(parse(&old).unwrap().profiles[0].weights, Weights::DEFAULT);
}

#[test]
fn several_profiles_and_global_settings() {
    let c = parse(&config(json!({
        "parallelism": 4,
        "percentageOfNodesToScore": 30,
        "podInitialBackoffSeconds": 2,
        "podMaxBackoffSeconds": 20,
        "profiles": [
            {"schedulerName": "default-scheduler"},
            {"schedulerName": "fast", "percentageOfNodesToScore": 10},
        ],
    })))
    .unwrap();
    let names: Vec<&str> = c.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["default-scheduler", "fast"]);
    assert_eq!(
        (c.profiles[0].percentage, c.profiles[1].percentage),
        (30, 10)
    );
    assert_eq!(c.parallelism, 4);
    assert_eq!(c.initial_backoff, Duration::from_secs(2));
    assert_eq!(c.max_backoff, Duration::from_secs(20));
}

#[test]
fn weights_come_from_score_then_multi_point() {
    let p = one(json!({"plugins": {
        "score": {"enabled": [{"name": "NodeResourcesFit", "weight": 5}]},
        "multiPoint": {"enabled": [{"name": "TaintToleration", "weight": 7}, {"name": "NodeResourcesFit", "weight": 9}]},
    }}))
    .unwrap();
    assert_eq!(p.weights.fit, 5);
    assert_eq!(p.weights.taints, 7);
    assert_eq!(p.weights.node_affinity, 2);
    // Weight 0 (not given) counts as 1.
    let p =
        one(json!({"plugins": {"score": {"enabled": [{"name": "InterPodAffinity"}]}}})).unwrap();
    assert_eq!(p.weights.pod_affinity, 1);
}

#[test]
fn disabling_plugins() {
    let p = one(json!({"plugins": {
        "filter": {"disabled": [{"name": "NodeResourcesFit"}]},
        "score": {"disabled": [{"name": "*"}], "enabled": [{"name": "NodeResourcesBalancedAllocation", "weight": 4}]},
        "postFilter": {"disabled": [{"name": "DefaultPreemption"}]},
    }}))
    .unwrap();
    assert!(!p.filters.resources && p.filters.taints && p.filters.spread);
    assert_eq!(
        p.weights,
        Weights {
            taints: 0,
            node_affinity: 0,
            fit: 0,
            balanced: 4,
            pod_affinity: 0,
            spread: 0
        }
    );
    assert!(!p.preemption);
    // Disabling everything in multiPoint leaves no queue sort plugin.
    let err = one(
        json!({"schedulerName": "bare", "plugins": {"multiPoint": {"disabled": [{"name": "*"}]}}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        "initializing profiles: creating profile for scheduler name bare: only one queue sort plugin required for profile with scheduler name \"bare\", but got 0"
    );
    let p = one(json!({"plugins": {
        "multiPoint": {"disabled": [{"name": "*"}], "enabled": [{"name": "NodeResourcesFit"}]},
        "queueSort": {"enabled": [{"name": "PrioritySort"}]},
        "bind": {"enabled": [{"name": "DefaultBinder"}]},
    }}))
    .unwrap();
    assert!(p.filters.resources && !p.filters.taints && !p.filters.unschedulable);
    assert_eq!((p.weights.fit, p.weights.taints), (1, 0));
}

#[test]
fn scoring_strategies() {
    let fit =
        |args: Value| one(json!({"pluginConfig": [{"name": "NodeResourcesFit", "args": args}]}));
    let p = fit(json!({"scoringStrategy": {"type": "MostAllocated"}})).unwrap();
    assert_eq!(p.scoring.strategy, Strategy::MostAllocated);
    assert_eq!(p.scoring.resources, Scoring::default().resources);
    assert!(!p.default_scoring);
    let p = fit(json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
        "resources": [{"name": "cpu", "weight": 3}, {"name": "nvidia.com/gpu", "weight": 1}],
        "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}}))
    .unwrap();
    assert_eq!(
        p.scoring.strategy,
        Strategy::RequestedToCapacityRatio(vec![(0, 0), (100, 10)])
    );
    assert_eq!(p.scoring.resources[1], ("nvidia.com/gpu".to_string(), 1));
    assert!(fit(json!({})).unwrap().default_scoring);
    assert_eq!(
        fit(json!({"scoringStrategy": {"type": "Fancy"}})).unwrap_err(),
        "profiles[0].pluginConfig[0].args.scoringStrategy.type: Unsupported value: \"Fancy\": supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
    );
    assert_eq!(
        fit(json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 200}]}})).unwrap_err(),
        "profiles[0].pluginConfig[0].args.scoringStrategy.resources[0].weight: Invalid value: 200: resource weight of cpu not in valid range (0, 100]"
    );
    assert_eq!(
        fit(json!({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": [
            {"utilization": 50, "score": 1}, {"utilization": 40, "score": 11}]}}})).unwrap_err(),
        "[profiles[0].pluginConfig[0].args.scoringStrategy.requestedToCapacityRatio.shape[1].utilization: Invalid value: 40: values must be sorted in increasing order, profiles[0].pluginConfig[0].args.scoringStrategy.requestedToCapacityRatio.shape[1].score: Invalid value: 11: not in valid range [0, 10]]"
    );
}

#[test]
fn default_spread_constraints() {
    let spread =
        |args: Value| one(json!({"pluginConfig": [{"name": "PodTopologySpread", "args": args}]}));
    let p = spread(json!({"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]}))
    .unwrap();
    assert_eq!(p.default_spread.len(), 1);
    assert!(p.default_spread[0].hard);
    assert!(
        spread(json!({"defaultingType": "System"}))
            .unwrap()
            .default_spread
            .is_empty()
    );
    assert_eq!(
        spread(json!({"defaultConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]})).unwrap_err(),
        "profiles[0].pluginConfig[0].args.defaultingType: Invalid value: \"System\": when .defaultConstraints are not empty"
    );
    assert_eq!(
        spread(json!({"defaultingType": "List", "defaultConstraints": [{"maxSkew": 0, "topologyKey": "zone",
            "whenUnsatisfiable": "Sometimes", "labelSelector": {}}]})).unwrap_err(),
        "[profiles[0].pluginConfig[0].args.defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf), profiles[0].pluginConfig[0].args.defaultConstraints[0].whenUnsatisfiable: Unsupported value: \"Sometimes\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\", profiles[0].pluginConfig[0].args.defaultConstraints[0].labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod]"
    );
}

#[test]
fn unknown_and_misplaced_plugins() {
    let err = |plugins: Value| one(json!({"plugins": plugins})).unwrap_err();
    assert_eq!(
        err(json!({"filter": {"enabled": [{"name": "Fancy"}]}})),
        "initializing profiles: creating profile for scheduler name default-scheduler: FilterPlugin \"Fancy\" does not exist"
    );
    assert_eq!(
        err(json!({"multiPoint": {"enabled": [{"name": "Fancy"}]}})),
        "initializing profiles: creating profile for scheduler name default-scheduler: PreFilterPlugin \"Fancy\" does not exist"
    );
    assert_eq!(
        err(json!({"score": {"enabled": [{"name": "NodeName"}]}})),
        "initializing profiles: creating profile for scheduler name default-scheduler: plugin \"NodeName\" does not extend ScorePlugin plugin"
    );
    assert_eq!(
        err(json!({"score": {"enabled": [{"name": "ImageLocality"}, {"name": "ImageLocality"}]}})),
        "initializing profiles: creating profile for scheduler name default-scheduler: plugin \"ImageLocality\" already registered as \"ScorePlugin\""
    );
    // Known to kube-scheduler but not carried out here: accepted with a warning.
    let c = parse(&config(
        json!({"profiles": [{"plugins": {"filter": {"enabled": [{"name": "NodePorts"}]}}}]}),
    ))
    .unwrap();
    assert_eq!(
        c.warnings,
        ["plugin \"NodePorts\" is enabled but not implemented by this scheduler; ignored"]
    );
}

#[test]
fn malformed_files_are_refused() {
    assert_eq!(
        parse(&config(
            json!({"profiles": [{"schedulerName": "a", "plugin": {}}], "colour": 1})
        ))
        .unwrap_err(),
        "strict decoding error: unknown field \"colour\", unknown field \"profiles[0].plugin\""
    );
    assert_eq!(
        parse(&config(json!({"profiles": [{"pluginConfig": [{"name": "NodeResourcesFit", "args": {"scoringStrategy": {"kind": "x"}}}]}]}))).unwrap_err(),
        "strict decoding error: unknown field \"profiles[0].pluginConfig[0].args.scoringStrategy.kind\""
    );
    assert_eq!(
        parse(&config(json!({"parallelism": "many"}))).unwrap_err(),
        "cannot decode string into parallelism: want an integer"
    );
    assert_eq!(
        parse(&json!({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "Policy"}))
            .unwrap_err(),
        "no kind \"Policy\" is registered for version \"kubescheduler.config.k8s.io/v1\""
    );
    assert_eq!(
        parse(&json!({"kind": "KubeSchedulerConfiguration"})).unwrap_err(),
        "Object 'apiVersion' is missing"
    );
}

#[test]
fn validation_messages() {
    assert_eq!(
        parse(&config(
            json!({"profiles": [{"schedulerName": "a"}, {"schedulerName": "a"}, {}]})
        ))
        .unwrap_err(),
        "[profiles[1].schedulerName: Duplicate value: \"a\", profiles[2].schedulerName: Required value]"
    );
    assert_eq!(
        parse(&config(
            json!({"parallelism": 0, "percentageOfNodesToScore": 101})
        ))
        .unwrap_err(),
        "[parallelism: Invalid value: 0: should be an integer value greater than zero, percentageOfNodesToScore: Invalid value: 101: not in valid range [0-100]]"
    );
    assert_eq!(
        parse(&config(
            json!({"podInitialBackoffSeconds": 5, "podMaxBackoffSeconds": 2})
        ))
        .unwrap_err(),
        "podMaxBackoffSeconds: Invalid value: 2: must be greater than or equal to PodInitialBackoffSeconds"
    );
    assert_eq!(
        one(json!({"pluginConfig": [{"name": "NodeAffinity"}, {"name": "NodeAffinity"}]}))
            .unwrap_err(),
        "initializing profiles: creating profile for scheduler name default-scheduler: repeated config for plugin NodeAffinity"
    );
}
