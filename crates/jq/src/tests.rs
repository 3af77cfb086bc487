//! Tests of jq evaluation: the plain-path fast path must agree with jaq.

use super::*;
use serde_json::json;

fn run(q: &str, v: &Value) -> Vec<Value> {
    Query::parse(q)
        .unwrap()
        .eval(v)
        .into_iter()
        .map(Cow::into_owned)
        .collect()
}

/// Evaluates `q` through jaq alone (no fast path).
fn run_jaq(q: &str, v: &Value) -> Vec<Value> {
    run(&format!("({q})"), v)
}

#[test]
fn paths() {
    let pod = json!({"metadata": {"name": "p", "labels": {"a.b/c": "x"}}, "status": {"phase": "Running"}});
    assert_eq!(run(".status.phase", &pod), vec![json!("Running")]);
    assert_eq!(run(".metadata.deletionTimestamp", &pod), vec![Value::Null]);
    assert_eq!(run(".metadata.labels[\"a.b/c\"]", &pod), vec![json!("x")]);
    assert_eq!(run(".metadata.labels.\"a.b/c\"", &pod), vec![json!("x")]);
    assert_eq!(run(".nope.deeper.still", &pod), vec![Value::Null]);
    assert_eq!(run(".", &pod), vec![pod.clone()]);
    // Indexing a string is an error: no values.
    assert!(run(".metadata.name.x", &pod).is_empty());
    assert_eq!(run(".metadata.name.x?", &pod), Vec::<Value>::new());
}

#[test]
fn plain_paths_skip_jaq() {
    for q in [
        ".status.phase",
        ".metadata.annotations[\"a/b\"]",
        ".metadata.ownerReferences.[].kind",
        ".a[0].b[-1]",
        ".",
    ] {
        assert!(Query::parse(q).unwrap().is_plain_path(), "{q}");
    }
    for q in [
        ".a == 1",
        ".a // 1",
        ".a |= 1",
        ".a?",
        ".a[1:2]",
        ".a as $x | $x",
    ] {
        assert!(!Query::parse(q).unwrap().is_plain_path(), "{q}");
    }
}

#[test]
fn fast_path_agrees_with_jaq() {
    let v = json!({"a": {"b": [1, {"c": "x"}], "s": "str", "n": null},
                   "m": {"k1": 1, "k2": 2}});
    for q in [
        ".a.b",
        ".a.b[1].c",
        ".a.b[-1]",
        ".a.b[5]",
        ".a.b.[]",
        ".m[]",
        ".a.n.x",
        ".a.n[0]",
        ".a.s.x",
        ".a.s[]",
        ".a.n[]",
        ".m.[] | . + 1",
        ".a.b[] | select(type == \"object\") | .c",
    ] {
        assert_eq!(run(q, &v), run_jaq(q, &v), "{q}");
    }
}

#[test]
fn equality_selections_skip_jaq_and_agree_with_it() {
    let node = json!({"status": {"conditions": [
        {"type": "MemoryPressure", "status": "False"},
        {"type": "Ready", "status": "True", "x": null},
        {"type": "Odd", "status": true},
        "not an object"]},
        "list": [{"t": ["a", "b", "a"]}, {"t": []}]});
    let fast = [
        r#".status.conditions.[] | select( .type == "Ready" ) | .status"#,
        r#".status.conditions[0:2][] | select(.type == "Ready") | .status"#,
        r#".status.conditions.[] | select(.status != "True")"#,
        r#".status.conditions.[] | select(.status == true) | .type"#,
        r#".status.conditions.[] | select(.x == null) | .type"#,
        r#".list[] | select(.t[] == "a")"#,
        r#".list[] | select(.t[] == "a") | .t | length"#,
        r#".status.conditions.[] | select(.type == "a)b")"#,
        r#".status | select(.nope == null) | .conditions[0].type"#,
    ];
    for q in fast {
        assert_eq!(run(q, &node), run_jaq(q, &node), "{q}");
    }
    let plain = Query::parse(fast[0]).unwrap();
    assert!(plain.is_plain_path(), "the Ready selector runs without jaq");
    for q in [
        r#".a[] | select(.n == 1)"#,
        r#".a[] | select(.t == "x" and .u == "y")"#,
        r#".a[] | select(.t == "\(1)")"#,
        r#".a[] | select(.t == "x") | .b == 1"#,
    ] {
        let v = json!({"a": [{"n": 1.0, "t": "x", "u": "y", "b": 1}]});
        assert_eq!(run(q, &v), run_jaq(q, &v), "{q}");
    }
    assert!(
        !Query::parse(r#".a[] | select(.n == 1)"#)
            .unwrap()
            .is_plain_path()
    );
}

#[test]
fn select_conditions() {
    let node = json!({"status": {"conditions": [
        {"type": "MemoryPressure", "status": "False"},
        {"type": "Ready", "status": "True"}]}});
    let q = r#".status.conditions.[] | select( .type == "Ready" ) | .status"#;
    assert_eq!(run(q, &node), vec![json!("True")]);
    assert_eq!(
        run(".status.conditions[] | .type", &node),
        vec![json!("MemoryPressure"), json!("Ready")]
    );
    assert_eq!(
        run(".status.conditions[-1].type", &node),
        vec![json!("Ready")]
    );
    assert!(run(q, &json!({})).is_empty());
    assert_eq!(
        run(
            r#".status.conditions[] | select(.type == "Ready" and .status != "False") | .type"#,
            &node
        ),
        vec![json!("Ready")]
    );
    assert_eq!(run(".status.conditions | length", &node), vec![json!(2)]);
    assert_eq!(run(".x // \"d\"", &node), vec![json!("d")]);
    assert_eq!(run(".status | not", &node), vec![json!(false)]);
}

#[test]
fn the_whole_language() {
    let pod = json!({"metadata": {"name": "Web-1", "labels": {"app": "web", "apple": "1", "tier": "x"}},
                     "spec": {"replicas": 2}});
    assert_eq!(
        run(
            r#".metadata.labels | to_entries | map(select(.key|startswith("a"))) | length"#,
            &pod
        ),
        vec![json!(2)]
    );
    assert_eq!(
        run(r#".metadata.name | test("^web"; "i")"#, &pod),
        vec![json!(true)]
    );
    assert_eq!(
        run(".metadata.name | ascii_downcase", &pod),
        vec![json!("web-1")]
    );
    assert_eq!(run(".spec.replicas * 1.5", &pod), vec![json!(3)]);
    assert_eq!(run(".spec.replicas / 4", &pod), vec![json!(0.5)]);
    assert_eq!(
        run("[.metadata.labels[]] | sort", &pod),
        vec![json!(["1", "web", "x"])]
    );
    assert!(run("error(\"x\")", &pod).is_empty());
    assert!(run("halt", &pod).is_empty());
}

#[test]
fn updates() {
    let mut v = json!({"a": 1});
    Query::parse(".b.c[1] = \"x\"")
        .unwrap()
        .update(&mut v)
        .unwrap();
    assert_eq!(v, json!({"a": 1, "b": {"c": [null, "x"]}}));
    Query::parse(".a |= . + 1").unwrap().update(&mut v).unwrap();
    assert_eq!(v["a"], 2);
    Query::parse(".metadata.labels[\"a.b/c\"] = \"y\"")
        .unwrap()
        .update(&mut v)
        .unwrap();
    assert_eq!(v["metadata"]["labels"]["a.b/c"], "y");
    assert!(Query::parse(".a.x = 1").unwrap().update(&mut v).is_err());
    assert!(Query::parse("empty").unwrap().update(&mut v).is_err());
}

#[test]
fn owner_kinds() {
    let pod = json!({"metadata": {"ownerReferences": [{"kind": "Job", "name": "j"}]}});
    assert_eq!(
        run(".metadata.ownerReferences.[].kind", &pod),
        vec![json!("Job")]
    );
}

#[test]
fn rejects_invalid() {
    assert!(
        Query::parse(".a | nosuchfn(.b)")
            .unwrap_err()
            .contains("nosuchfn")
    );
    assert!(Query::parse(".a +").is_err());
    assert!(Query::parse("\"open").is_err());
    assert!(Query::parse(".a |").is_err());
}

#[test]
fn queries_are_shareable() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Query>();
}

#[test]
fn equal_expressions_share_one_compiled_filter() {
    let a = Query::parse(".metadata.labels | to_entries | length").unwrap();
    let b = Query::parse(".metadata.labels | to_entries | length").unwrap();
    let (Some(ra), Some(rb)) = (&a.rest, &b.rest) else {
        panic!("both run jaq after their path");
    };
    assert!(Arc::ptr_eq(ra, rb));
    let other = Query::parse(".metadata.labels | keys | length").unwrap();
    assert!(!Arc::ptr_eq(ra, other.rest.as_ref().unwrap()));
    let pod = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
    assert_eq!(a.first(&pod), Some(json!(2)));
    assert_eq!(other.first(&pod), Some(json!(2)));
    // The filter lives as long as a query holds it.
    drop((a, b));
    let again = Query::parse(".metadata.labels | to_entries | length").unwrap();
    assert_eq!(again.first(&pod), Some(json!(2)));
}

#[test]
fn plain_paths_compile_their_update_on_first_use() {
    let q = Query::parse(".spec.replicas").unwrap();
    assert!(q.whole.get().is_none());
    let mut v = json!({"spec": {"replicas": 1}});
    assert_eq!(q.first(&v), Some(json!(1)));
    assert!(q.whole.get().is_none());
    let bump = Query::parse(".spec.replicas |= . + 1").unwrap();
    assert!(bump.whole.get().is_some());
    bump.update(&mut v).unwrap();
    assert_eq!(v["spec"]["replicas"], 2);
    // A plain path as an update replaces the input by what it reaches.
    q.update(&mut v).unwrap();
    assert!(q.whole.get().is_some());
    assert_eq!(v, json!(2));
}

#[test]
fn what_an_expression_reads() {
    let reads = |q: &str| Query::parse(q).unwrap().reads_under().map(|p| p.join("/"));
    assert_eq!(reads(".status.phase").as_deref(), Some("status/phase"));
    assert_eq!(
        reads(r#".status.conditions.[] | select( .type == "Ready" ) | .status"#).as_deref(),
        Some("status/conditions")
    );
    assert_eq!(
        reads(".metadata.ownerReferences.[].kind").as_deref(),
        Some("metadata/ownerReferences")
    );
    assert_eq!(
        reads(r#".metadata.labels."a.b/c""#).as_deref(),
        Some("metadata/labels/a.b/c")
    );
    assert_eq!(reads(".a | .b as $x | $x").as_deref(), Some("a"));
    // Anything that may read the root elsewhere reads everything.
    for q in [
        ".",
        "[.a, .b]",
        ".a as $x | .b",
        ".a == 1",
        ".a // .b",
        r#"select(.a == "x")"#,
    ] {
        assert_eq!(reads(q), None, "{q}");
    }
}
