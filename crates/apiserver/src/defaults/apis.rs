//! Defaulting of the networking, admission registration, flow control and CSI kinds, as
//! kube-apiserver's v1 defaulters fill them in.

use serde_json::{Map, Value, json};

use super::{obj_mut, set_default};

/// A kind's defaulter: group, kind, function.
type Defaulter = (&'static str, &'static str, fn(&mut Value));

const DEFAULTERS: &[Defaulter] = &[
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        mutating_webhooks,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        validating_webhooks,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        admission_policy,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        admission_policy_binding,
    ),
    ("apiregistration.k8s.io", "APIService", api_service),
    ("networking.k8s.io", "NetworkPolicy", network_policy),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema", flow_schema),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        priority_level,
    ),
    ("storage.k8s.io", "CSIDriver", csi_driver),
];

/// Defaults an object of a kind defaulted here; other kinds are left as they are.
pub(super) fn apply(group: &str, kind: &str, obj: &mut Value) {
    if let Some((_, _, defaulter)) = DEFAULTERS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
    {
        defaulter(obj);
    }
}

fn items_mut<'a>(
    obj: &'a mut Value,
    pointer: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    obj.pointer_mut(pointer)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// Rules match resources of every scope unless they say otherwise.
fn rules(m: &mut Map<String, Value>, key: &str) {
    for rule in m
        .get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(rule) = rule.as_object_mut() {
            set_default(rule, "scope", json!("*"));
        }
    }
}

fn webhook(hook: &mut Map<String, Value>) {
    set_default(hook, "failurePolicy", json!("Fail"));
    set_default(hook, "matchPolicy", json!("Equivalent"));
    set_default(hook, "namespaceSelector", json!({}));
    set_default(hook, "objectSelector", json!({}));
    set_default(hook, "timeoutSeconds", json!(10));
    rules(hook, "rules");
    if let Some(service) = hook
        .get_mut("clientConfig")
        .and_then(|c| c.get_mut("service"))
        .and_then(Value::as_object_mut)
    {
        set_default(service, "port", json!(443));
    }
}

fn validating_webhooks(obj: &mut Value) {
    items_mut(obj, "/webhooks").for_each(webhook);
}

fn mutating_webhooks(obj: &mut Value) {
    for hook in items_mut(obj, "/webhooks") {
        webhook(hook);
        set_default(hook, "reinvocationPolicy", json!("Never"));
    }
}

fn match_resources(m: &mut Map<String, Value>) {
    set_default(m, "matchPolicy", json!("Equivalent"));
    set_default(m, "namespaceSelector", json!({}));
    set_default(m, "objectSelector", json!({}));
    rules(m, "resourceRules");
    rules(m, "excludeResourceRules");
}

fn admission_policy(obj: &mut Value) {
    let spec = obj_mut(obj, "spec");
    set_default(spec, "failurePolicy", json!("Fail"));
    if let Some(m) = spec
        .get_mut("matchConstraints")
        .and_then(Value::as_object_mut)
    {
        match_resources(m);
    }
}

fn admission_policy_binding(obj: &mut Value) {
    let spec = obj_mut(obj, "spec");
    if let Some(m) = spec
        .get_mut("matchResources")
        .and_then(Value::as_object_mut)
    {
        match_resources(m);
    }
}

fn api_service(obj: &mut Value) {
    if let Some(service) = obj
        .pointer_mut("/spec/service")
        .and_then(Value::as_object_mut)
    {
        set_default(service, "port", json!(443));
    }
}

fn network_policy(obj: &mut Value) {
    for rule in ["/spec/ingress", "/spec/egress"] {
        for r in items_mut(obj, rule) {
            for port in r
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(port) = port.as_object_mut() {
                    set_default(port, "protocol", json!("TCP"));
                }
            }
        }
    }
    let spec = obj_mut(obj, "spec");
    let egress = spec
        .get("egress")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    let types = if egress {
        json!(["Ingress", "Egress"])
    } else {
        json!(["Ingress"])
    };
    if spec
        .get("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert("policyTypes".into(), types);
    }
}

fn flow_schema(obj: &mut Value) {
    let spec = obj_mut(obj, "spec");
    if spec
        .get("matchingPrecedence")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        == 0
    {
        spec.insert("matchingPrecedence".into(), json!(1000));
    }
}

fn priority_level(obj: &mut Value) {
    let spec = obj_mut(obj, "spec");
    if let Some(exempt) = spec.get_mut("exempt").and_then(Value::as_object_mut) {
        set_default(exempt, "nominalConcurrencyShares", json!(0));
        set_default(exempt, "lendablePercent", json!(0));
    }
    if let Some(limited) = spec.get_mut("limited").and_then(Value::as_object_mut) {
        set_default(limited, "nominalConcurrencyShares", json!(30));
        set_default(limited, "lendablePercent", json!(0));
        if let Some(queuing) = limited
            .get_mut("limitResponse")
            .and_then(|r| r.get_mut("queuing"))
            .and_then(Value::as_object_mut)
        {
            set_default(queuing, "queues", json!(64));
            set_default(queuing, "handSize", json!(8));
            set_default(queuing, "queueLengthLimit", json!(50));
        }
    }
}

fn csi_driver(obj: &mut Value) {
    let spec = obj_mut(obj, "spec");
    for (key, value) in [
        ("attachRequired", json!(true)),
        ("podInfoOnMount", json!(false)),
        ("storageCapacity", json!(false)),
        ("fsGroupPolicy", json!("ReadWriteOnceWithFSType")),
        ("volumeLifecycleModes", json!(["Persistent"])),
        ("requiresRepublish", json!(false)),
        ("seLinuxMount", json!(false)),
    ] {
        set_default(spec, key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_get_kube_apiserver_defaults() {
        let mut obj = json!({"webhooks": [{"name": "a.b.c", "clientConfig": {"service": {"namespace": "ns", "name": "s"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]});
        apply(
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
            &mut obj,
        );
        let hook = &obj["webhooks"][0];
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["matchPolicy"], "Equivalent");
        assert_eq!(hook["namespaceSelector"], json!({}));
        assert_eq!(hook["objectSelector"], json!({}));
        assert_eq!(hook["timeoutSeconds"], 10);
        assert_eq!(hook["reinvocationPolicy"], "Never");
        assert_eq!(hook["rules"][0]["scope"], "*");
        assert_eq!(hook["clientConfig"]["service"]["port"], 443);
    }

    #[test]
    fn network_policies_default_their_types() {
        let mut plain = json!({"spec": {"podSelector": {}}});
        apply("networking.k8s.io", "NetworkPolicy", &mut plain);
        assert_eq!(plain["spec"]["policyTypes"], json!(["Ingress"]));
        let mut egress =
            json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}});
        apply("networking.k8s.io", "NetworkPolicy", &mut egress);
        assert_eq!(egress["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(egress["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn flow_control_and_csi_defaults() {
        let mut level = json!({"spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}});
        apply(
            "flowcontrol.apiserver.k8s.io",
            "PriorityLevelConfiguration",
            &mut level,
        );
        assert_eq!(level["spec"]["limited"]["nominalConcurrencyShares"], 30);
        assert_eq!(
            level["spec"]["limited"]["limitResponse"]["queuing"],
            json!({"queues": 64, "handSize": 8, "queueLengthLimit": 50})
        );
        let mut schema =
            json!({"spec": {"priorityLevelConfiguration": {"name": "global-default"}}});
        apply("flowcontrol.apiserver.k8s.io", "FlowSchema", &mut schema);
        assert_eq!(schema["spec"]["matchingPrecedence"], 1000);
        let mut driver = json!({"metadata": {"name": "d"}});
        apply("storage.k8s.io", "CSIDriver", &mut driver);
        assert_eq!(driver["spec"]["attachRequired"], true);
        assert_eq!(
            driver["spec"]["volumeLifecycleModes"],
            json!(["Persistent"])
        );
        assert_eq!(driver["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
    }
}
