use super::*;

/// The estimated cost of one evaluation of `rule` on a node with `schema` (not a resource root).
fn cost(schema: Value, rule: &str) -> u64 {
    let decl = Decl::of(&schema, false).expect("schema exposed to CEL");
    let program = kube_cel::cel::Program::compile(rule).expect("rule compiles");
    estimate(program.expression(), &decl, &SchemaSizes(&decl)).max
}

fn with_max(mut schema: Value, key: &str, max: Option<i64>) -> Value {
    if let Some(max) = max {
        schema[key] = json!(max);
    }
    schema
}

fn array(items: Value, max: Option<i64>) -> Value {
    with_max(json!({"type": "array", "items": items}), "maxItems", max)
}

fn map(values: Value, max: Option<i64>) -> Value {
    with_max(
        json!({"type": "object", "additionalProperties": values}),
        "maxProperties",
        max,
    )
}

fn string(max: Option<i64>) -> Value {
    with_max(json!({"type": "string"}), "maxLength", max)
}

fn object_with_required() -> Value {
    json!({"type": "object", "required": ["required"], "properties": {
        "required": {"type": "string"}, "optional": {"type": "string"}}})
}

/// The figures kube-apiserver 1.33's own cost tests expect (`TestCostEstimation`), each with the
/// bounds unset and set.
#[test]
fn estimates_match_kube_apiserver() {
    type Schema = fn(Option<i64>) -> Value;
    let cases: &[(&str, Schema, &str, u64, i64, u64)] = &[
        (
            "number list, all",
            |m| array(json!({"type": "number"}), m),
            "self.all(x, true)",
            4718591,
            10,
            32,
        ),
        (
            "string list, all",
            |m| array(json!({"type": "string"}), m),
            "self.all(x, true)",
            3145727,
            20,
            62,
        ),
        (
            "boolean list, all",
            |m| array(json!({"type": "boolean"}), m),
            "self.all(x, true)",
            1887437,
            5,
            17,
        ),
        (
            "list of number lists, all",
            |m| array(json!({"type": "array", "items": {"type": "number"}}), m),
            "self.all(x, true)",
            3145727,
            100,
            302,
        ),
        (
            "object list, all",
            |m| array(object_with_required(), m),
            "self.all(x, true)",
            555128,
            50,
            152,
        ),
        (
            "number map, all",
            |m| map(json!({"type": "number"}), m),
            "self.all(x, true)",
            1348169,
            10,
            32,
        ),
        (
            "string map, all",
            |m| map(json!({"type": "string"}), m),
            "self.all(x, true)",
            1179647,
            3,
            11,
        ),
        (
            "boolean map, all",
            |m| map(json!({"type": "boolean"}), m),
            "self.all(x, true)",
            943718,
            100,
            302,
        ),
        (
            "duration map, all",
            |m| map(json!({"type": "string", "format": "duration"}), m),
            "self.all(x, true)",
            1048577,
            5,
            17,
        ),
        (
            "date map, all",
            |m| map(json!({"type": "string", "format": "date"}), m),
            "self.all(x, true)",
            524288,
            10,
            32,
        ),
        (
            "date-time map, all",
            |m| map(json!({"type": "string", "format": "date-time"}), m),
            "self.all(x, true)",
            349526,
            25,
            77,
        ),
        (
            "int-or-string map, all",
            |m| map(json!({"x-kubernetes-int-or-string": true}), m),
            "self.all(x, true)",
            1348169,
            15,
            47,
        ),
        (
            "object map, all",
            |m| map(object_with_required(), m),
            "self.all(x, true)",
            428963,
            20,
            62,
        ),
        (
            "duration list, all",
            |m| array(json!({"type": "string", "format": "duration"}), m),
            "self.all(x, true)",
            2359295,
            5,
            17,
        ),
        (
            "date list, all",
            |m| array(json!({"type": "string", "format": "date"}), m),
            "self.all(x, true)",
            725936,
            15,
            47,
        ),
        (
            "date-time list, all",
            |m| array(json!({"type": "string", "format": "date-time"}), m),
            "self.all(x, true)",
            428963,
            25,
            77,
        ),
        (
            "string contains",
            string,
            "self.contains('test')",
            314574,
            10,
            5,
        ),
        (
            "string startsWith",
            string,
            "self.startsWith('test')",
            2,
            15,
            2,
        ),
        (
            "concatenation",
            string,
            r#"size(self + "hello") > size("hello")"#,
            314578,
            4,
            7,
        ),
        (
            "index of numbers",
            |m| array(json!({"type": "number"}), m),
            "self[1] == 0.0",
            2,
            5000,
            2,
        ),
        (
            "index of strings",
            |m| array(json!({"type": "string"}), m),
            "self[1] == self[1]",
            314577,
            8,
            314577,
        ),
        (
            "O(n^2) loop",
            |m| array(json!({"type": "number"}), m),
            "self.all(x, self.all(y, true))",
            0,
            10,
            352,
        ),
        (
            "O(n^3) loop",
            |m| array(json!({"type": "number"}), m),
            "self.all(x, self.all(y, self.all(z, true)))",
            0,
            10,
            3552,
        ),
        ("matches", string, r#"self.matches("x")"#, 314574, 50, 22),
        (
            "matches on a literal",
            string,
            r#""".matches("(((((((((())))))))))[0-9]")"#,
            7,
            10,
            7,
        ),
        ("empty regex", string, r#"self.matches("")"#, 1, 100, 1),
        (
            "map values against keys",
            |m| with_max(map(string(m), m), "maxProperties", m),
            "self.all(x, x.contains(self[x]))",
            2752507,
            10,
            72,
        ),
        ("string maxLength zero", string, r#"self == "x""#, 2, 0, 1),
        (
            "bytes maxLength zero",
            |m| with_max(json!({"type": "string", "format": "byte"}), "maxLength", m),
            r#"self == b"x""#,
            2,
            0,
            1,
        ),
        (
            "int-or-string index",
            |m| array(json!({"x-kubernetes-int-or-string": true}), m),
            "self[0] == 5",
            3,
            10,
            3,
        ),
        (
            "nested lists index",
            |m| array(json!({"type": "array", "items": {"type": "number"}}), m),
            "self[0][0] == -1.0",
            3,
            51,
            3,
        ),
        (
            "list of number maps, all",
            |m| {
                array(
                    json!({"type": "object", "additionalProperties": {"type": "number"}}),
                    m,
                )
            },
            "self.all(x, x.y == 25.2)",
            6291452,
            12,
            74,
        ),
        (
            "list of number maps, index",
            |m| {
                array(
                    json!({"type": "object", "additionalProperties": {"type": "number"}}),
                    m,
                )
            },
            "self[0].x > 2.0",
            4,
            3000,
            4,
        ),
        (
            "duration list, method",
            |m| array(json!({"type": "string", "format": "duration"}), m),
            "self[0].getHours() == 2",
            4,
            525,
            4,
        ),
        ("find", string, "self.find('[0-9]+') == ''", 629147, 10, 11),
        (
            "lowerAscii",
            string,
            "self.lowerAscii() == 'lower!'",
            314575,
            10,
            6,
        ),
        (
            "size of old and new",
            |m| map(json!({"type": "integer"}), m),
            "oldSelf.size() == self.size()",
            5,
            10,
            5,
        ),
        (
            "timestamps compared",
            |m| map(json!({"type": "string", "format": "date-time"}), m),
            r#"self["a"] == self["b"]"#,
            8,
            7,
            8,
        ),
        (
            "enum bounds strings",
            |m| {
                with_max(
                    json!({"type": "string", "enum": ["A", "B", "C", "LongValue"]}),
                    "maxLength",
                    m,
                )
            },
            "self.contains('A')",
            2,
            1000,
            401,
        ),
        (
            "join",
            |m| array(string(m), m),
            "self.join(' ') == 'aa bb'",
            329853068905,
            10,
            43,
        ),
        (
            "isSorted",
            |m| array(string(m), m),
            "self.isSorted() == true",
            329854432052,
            10,
            52,
        ),
    ];
    for (name, schema, rule, unbounded, max, bounded) in cases {
        if *unbounded > 0 {
            assert_eq!(cost(schema(None), rule), *unbounded, "{name}, no bounds");
        }
        assert_eq!(
            cost(schema(Some(*max)), rule),
            *bounded,
            "{name}, bounds {max}"
        );
    }
    // Nested maps under a list: every level bounded, or only some.
    let nested = |all: bool, m: Option<i64>| {
        let inner = with_max(object_with_required(), "maxProperties", m.filter(|_| all));
        array(map(inner, m), m.filter(|_| all))
    };
    let rule = r#"self.all(x, x["y"].required == "z")"#;
    assert_eq!(cost(nested(true, None), rule), 7340027);
    assert_eq!(cost(nested(true, Some(10)), rule), 72);
    assert_eq!(cost(nested(false, Some(10)), rule), 7340027);
}

#[test]
fn library_estimates_follow_result_sizes() {
    let obj = |str_max: Option<i64>| {
        json!({"type": "object", "properties": {
            "str": string(str_max),
            "before": string(Some(2)),
            "after": string(Some(4)),
            "separator": string(str_max),
        }})
    };
    let replace = "self.str.replace(self.before, self.after) == 'does not matter'";
    assert_eq!(cost(obj(None), replace), 629154);
    assert_eq!(cost(obj(Some(4)), replace), 12);
    let split = "self.str.split(self.separator) == []";
    assert_eq!(cost(obj(None), split), 629160);
    assert_eq!(cost(obj(Some(10)), split), 22);
}

/// The sizes kube's users meet: the per-item cost of `contains` on strings of a given
/// `maxLength` sets the largest `maxItems` a rule on the list may have.
#[test]
fn contains_on_bounded_strings_allows_the_same_lists_as_kube() {
    for (max_length, max_items) in [(16, 909_090), (63, 333_333), (253, 94_339), (1024, 24_154)] {
        let tags = |n: i64| array(string(Some(max_length)), Some(n));
        let rule = "self.all(x, x.contains('gpu'))";
        assert!(
            cost(tags(max_items), rule) <= STATIC_RULE_LIMIT,
            "{max_length}"
        );
        assert!(
            cost(tags(max_items + 1), rule) > STATIC_RULE_LIMIT,
            "{max_length}"
        );
    }
}

fn crd_schema(items: Value, rules: Value) -> Value {
    json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": rules,
        "properties": {"items": items},
    }}})
}

const PATH: &str = "spec.validation.openAPIV3Schema";
const NESTED: &str = r#"self.items.all(a, self.items.all(b, self.items.all(c, a + b + c != "")))"#;

#[test]
fn unbounded_nested_comprehensions_are_refused() {
    let schema = crd_schema(
        json!({"type": "array", "items": {"type": "string"}}),
        json!([{"rule": NESTED}]),
    );
    let causes = check_schema(&schema, PATH, false);
    let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
    let rule = format!("{PATH}.properties[spec].x-kubernetes-validations[0].rule");
    let advice = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";
    assert_eq!(
        rendered,
        [
            format!(
                "{rule}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x {advice}"
            ),
            format!(
                "{rule}: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
            ),
            format!(
                "{PATH}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x {advice}"
            ),
        ]
    );
    assert!(causes.iter().all(|c| c.reason == "FieldValueForbidden"));
}

#[test]
fn bounded_lists_and_short_strings_are_accepted() {
    let bounded = |max_length: Option<i64>| {
        crd_schema(
            json!({"type": "array", "maxItems": 10, "items": string(max_length)}),
            json!([{"rule": NESTED}]),
        )
    };
    assert!(check_schema(&bounded(Some(64)), PATH, false).is_empty());
    // Concatenating strings of up to 3 MiB costs 1.5 million on its own, a thousand times.
    let causes = check_schema(&bounded(None), PATH, false);
    assert!(causes[0].message.contains("more than 100x"), "{causes:?}");
    let single = crd_schema(
        json!({"type": "array", "items": {"type": "string"}}),
        json!([{"rule": "self.items.all(x, x.size() <= 63)"}]),
    );
    assert!(check_schema(&single, PATH, false).is_empty());
    // A string function on each of a million unbounded strings is not.
    let contains = crd_schema(
        json!({"type": "array", "items": {"type": "string", "maxLength": 64}}),
        json!([{"rule": "self.items.all(x, x.contains('a'))"}]),
    );
    let causes = check_schema(&contains, PATH, false);
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert!(
        causes[0]
            .message
            .contains("estimated rule cost exceeds budget by factor of 3.1x"),
        "{causes:?}"
    );
}

#[test]
fn strings_cost_by_length() {
    let with = |len: Option<i64>| {
        crd_schema(
            json!({"type": "array", "maxItems": 1000, "items": string(len)}),
            json!([{"rule": "self.items.all(x, x.matches('^[a-z]+$'))"}]),
        )
    };
    assert!(check_schema(&with(Some(63)), PATH, false).is_empty());
    let causes = check_schema(&with(None), PATH, false);
    assert!(causes[0].message.contains("factor of 62.9x"), "{causes:?}");
}

#[test]
fn rules_under_lists_and_maps_count_once_per_element() {
    // A rule on the items of a list runs once per item: unbounded, as often as items fit in
    // a request.
    let per_item = |max: Option<i64>| {
        let item = json!({"type": "object", "properties": {"name": string(Some(253))},
            "x-kubernetes-validations": [{"rule": "self.name.contains('x')"}]});
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": array(item, max)}}}})
    };
    assert!(check_schema(&per_item(Some(100)), PATH, false).is_empty());
    let causes = check_schema(&per_item(None), PATH, false);
    assert_eq!(
        causes[0].field,
        format!("{PATH}.properties[spec].properties[items].items.x-kubernetes-validations[0].rule")
    );
    assert!(causes[0].message.contains("factor of 10.9x"), "{causes:?}");
    // Map values alike.
    let per_value = |max: Option<i64>| {
        let value = json!({"type": "string", "maxLength": 253,
            "x-kubernetes-validations": [{"rule": "self.contains('x')"}]});
        json!({"type": "object", "properties": {"labels": map(value, max)}})
    };
    assert!(check_schema(&per_value(Some(64)), PATH, false).is_empty());
    let causes = check_schema(&per_value(None), PATH, false);
    assert_eq!(causes.len(), 3, "{causes:?}");
    assert_eq!(
        causes[0].field,
        format!("{PATH}.properties[labels].additionalProperties.x-kubernetes-validations[0].rule")
    );
}

#[test]
fn the_total_of_all_rules_is_limited() {
    // Twelve rules of 9.4 million each: none over the per-rule limit, together over 100 million.
    let rules: Vec<Value> = (0..12)
        .map(|i| json!({"rule": format!("self.items.all(x, x.size() > {i})")}))
        .collect();
    let schema = crd_schema(
        json!({"type": "array", "maxItems": 1_560_000, "items": {"type": "string"}}),
        json!(rules),
    );
    let causes = check_schema(&schema, PATH, false);
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields.len(), 5, "{causes:?}");
    assert!(fields[..4].iter().all(|f| f.ends_with("].rule")));
    assert_eq!(fields[4], PATH);
    assert!(
        causes[4].message.starts_with(
            "Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of 1.123200x"
        ),
        "{}",
        causes[4].message
    );
}

#[test]
fn message_expressions_are_estimated_too() {
    let schema = crd_schema(
        json!({"type": "array", "maxItems": 5, "items": {"type": "integer"}}),
        json!([{"rule": "self.items.size() < 5", "messageExpression": "'too many: ' + string(self.items)"}]),
    );
    let causes = check_schema(&schema, PATH, false);
    assert!(
        causes[0]
            .field
            .ends_with("x-kubernetes-validations[0].messageExpression"),
        "{causes:?}"
    );
    assert!(
        causes[0]
            .message
            .contains("estimated messageExpression cost exceeds budget")
    );
}

#[test]
fn escaped_property_names() {
    assert_eq!(escape("foo-bar").as_deref(), Some("foo__dash__bar"));
    assert_eq!(escape("a.b/c").as_deref(), Some("a__dot__b__slash__c"));
    assert_eq!(escape("x__y").as_deref(), Some("x__underscores__y"));
    assert_eq!(escape("x_y").as_deref(), Some("x_y"));
    assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
    assert_eq!(escape("1st"), None);
    assert_eq!(escape("a b"), None);
    let schema = json!({"type": "object", "properties": {"max-len": string(Some(4))}});
    assert_eq!(cost(schema, "self.max__dash__len.contains('ab')"), 4);
}

fn plan(items: Value, rules: Value) -> Plan {
    Plan::new(&crd_schema(items, rules)).expect("rules")
}

fn words(n: usize) -> Value {
    json!({"spec": {"items": (0..n).map(|i| format!("w{i}")).collect::<Vec<_>>()}})
}

#[test]
fn objects_are_costed_by_their_own_sizes() {
    let p = plan(
        json!({"type": "array", "maxItems": 200, "items": {"type": "string"}}),
        json!([{"rule": NESTED, "message": "no empty triples"}]),
    );
    // 20 items: 8000 innermost iterations, well within the limit of one evaluation.
    assert!(p.check(&words(20), None).is_none());
    // 60 items cost over a million: kube-apiserver cancels the evaluation.
    let cause = p.check(&words(60), None).expect("over the limit");
    assert_eq!(
        cause.render(),
        "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: no empty triples"
    );
}

#[test]
fn the_budget_covers_all_rules_of_an_object() {
    // One rule per group, each evaluation 541,502 with 300 items: the 19th runs out of budget.
    let group = json!({"type": "array", "maxItems": 2000, "items": {"type": "string", "maxLength": 10},
        "x-kubernetes-validations": [{"rule": "self.all(a, self.all(b, a != b || true))"}]});
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "groups": {"type": "array", "maxItems": 100, "items": group}}}}});
    let p = Plan::new(&schema).expect("rules");
    let items: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    let few = json!({"spec": {"groups": vec![items.clone(); 18]}});
    assert!(p.check(&few, None).is_none());
    let many = json!({"spec": {"groups": vec![items; 100]}});
    let cause = p.check(&many, None).expect("over budget");
    assert_eq!(
        cause.render(),
        "spec.groups[18]: Invalid value: \"array\": validation failed due to running out of cost budget, no further validation rules will be run"
    );
}

#[test]
fn transition_rules_cost_nothing_on_create() {
    let p = plan(
        json!({"type": "array", "maxItems": 200, "items": {"type": "string"}}),
        json!([{"rule": format!("{NESTED} && self == oldSelf")}]),
    );
    assert!(p.check(&words(60), None).is_none());
    assert!(p.check(&words(60), Some(&words(60))).is_some());
}

#[test]
fn runtime_sizes_use_actual_lengths() {
    // Unbounded strings are costed by what they hold.
    let p = plan(
        json!({"type": "array", "maxItems": 10, "items": {"type": "string"}}),
        json!([{"rule": "self.items.all(x, x.contains('a'))"}]),
    );
    assert!(p.check(&words(10), None).is_none());
    let long = json!({"spec": {"items": vec!["a".repeat(600_000); 10]}});
    assert!(p.check(&long, None).is_none());
    let p = plan(
        json!({"type": "array", "maxItems": 10, "items": {"type": "string"}}),
        json!([{"rule": "self.items.all(x, x.contains('abcdefghijk'))"}]),
    );
    assert!(p.check(&words(10), None).is_none());
    assert!(p.check(&long, None).is_some());
}

#[test]
fn unchanged_schemas_keep_only_the_total_limit() {
    let schema = crd_schema(
        json!({"type": "array", "items": {"type": "string"}}),
        json!([{"rule": NESTED}]),
    );
    let fields: Vec<String> = check_schema(&schema, PATH, true)
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert_eq!(
        fields,
        [
            format!("{PATH}.properties[spec].x-kubernetes-validations[0].rule"),
            PATH.to_string()
        ]
    );
}
