//! A compact shape tree of the catalog's schemas, for what requests need from them: unknown-field
//! detection (`fieldValidation=Strict`) and the merge rules of patches and server-side apply.
//!
//! The catalog's schemas are flattened once into [`Shapes`]: an arena where every node says only
//! what matters here (an object with known fields and their merge rules, a map, a list, or
//! something whose contents are not checked). Named schemas become one node each, so recursive
//! types (JSONSchemaProps) are cycles in the arena rather than infinite trees.

use std::{collections::HashMap, sync::Arc};

use serde_json::{Map, Value};

use crate::catalog::REF_PREFIX;

pub(crate) type ShapeId = usize;

#[derive(Debug, Clone)]
enum Shape {
    /// Int-or-string, preserved-unknown-fields, untyped objects and named scalar types (times,
    /// quantities, which decode from more than their schema says): nothing to check.
    Unchecked,
    /// A plain scalar field: its JSON type is checked.
    Scalar(Scalar),
    /// A struct: only these fields are known.
    Object(Arc<ObjectShape>),
    /// `additionalProperties`: any key, values of one shape.
    Map(ShapeId),
    /// `items`: elements of one shape.
    List(ShapeId),
}

/// The JSON types a scalar field accepts, with the Go type kube-apiserver decodes it into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    String,
    /// Base64 text (`format: byte`).
    Bytes,
    Int32,
    Int64,
    Float,
    Bool,
}

impl Scalar {
    fn of(schema: &Map<String, Value>) -> Option<Scalar> {
        let format = schema.get("format").and_then(Value::as_str);
        Some(match schema.get("type")?.as_str()? {
            "string" if format == Some("byte") => Scalar::Bytes,
            "string" => Scalar::String,
            "integer" if format == Some("int32") => Scalar::Int32,
            "integer" => Scalar::Int64,
            "number" => Scalar::Float,
            "boolean" => Scalar::Bool,
            _ => return None,
        })
    }

    fn go_type(self) -> &'static str {
        match self {
            Scalar::String => "string",
            Scalar::Bytes => "[]uint8",
            Scalar::Int32 => "int32",
            Scalar::Int64 => "int64",
            Scalar::Float => "float64",
            Scalar::Bool => "bool",
        }
    }

    /// How Go's decoder names `value` when it cannot go into this type; `None` if it can.
    fn mismatch(self, value: &Value) -> Option<String> {
        let fits = match (self, value) {
            (_, Value::Null) => true,
            (Scalar::String | Scalar::Bytes, Value::String(_)) => true,
            (Scalar::Int32, Value::Number(n)) => {
                n.as_i64().is_some_and(|i| i32::try_from(i).is_ok())
            }
            (Scalar::Int64, Value::Number(n)) => n.is_i64(),
            (Scalar::Float, Value::Number(_)) => true,
            (Scalar::Bool, Value::Bool(_)) => true,
            _ => false,
        };
        // Go names the number itself only when it does not fit a numeric type.
        (!fits).then(|| match (self, value) {
            (Scalar::Int32 | Scalar::Int64 | Scalar::Float, Value::Number(n)) => {
                format!("number {n}")
            }
            (_, other) => json_kind(other).to_string(),
        })
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The first value of a request body that cannot be decoded into its field's type, worded as
/// kube-apiserver's Go decoder words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    /// `string`, `number 1.5`, `object`, ...
    pub value: String,
    /// The struct declaring the field (`DeploymentSpec`).
    pub go_struct: String,
    /// The field's path from the root, without list indexes (`spec.replicas`).
    pub field: String,
    /// The field's Go type (`int32`, `[]v1.Container`).
    pub go_type: String,
}

impl std::fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot unmarshal {} into Go struct field {}.{} of type {}",
            self.value, self.go_struct, self.field, self.go_type
        )
    }
}

#[derive(Debug, Default, Clone)]
struct ObjectShape {
    /// The Go type of a named struct (`v1.DeploymentSpec`).
    go_type: Option<Box<str>>,
    fields: HashMap<Box<str>, Field>,
    /// `x-kubernetes-map-type: atomic` on the type: replaced and owned as a whole.
    atomic: bool,
}

#[derive(Debug, Clone)]
struct Field {
    shape: ShapeId,
    rules: Option<MergeRules>,
}

/// How a list is merged by server-side apply (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced and owned as a whole.
    Atomic,
    /// Scalars merged as a set.
    Set,
    /// Objects merged by these keys (`x-kubernetes-list-map-keys`).
    Map(Vec<String>),
}

impl ListType {
    /// The `x-kubernetes-list-type` (with its `x-kubernetes-list-map-keys`) a schema declares.
    pub fn declared(schema: &Map<String, Value>) -> Option<ListType> {
        let list_type = schema.get("x-kubernetes-list-type")?.as_str()?;
        Some(match list_type {
            "set" => ListType::Set,
            "map" => ListType::Map(
                schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        })
    }
}

/// How a field merges, from its schema's `x-kubernetes-*` extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeRules {
    /// `x-kubernetes-patch-strategy` contains `merge`: a strategic merge patch merges the list
    /// (by [`MergeRules::patch_merge_key`], or as a set of scalars) instead of replacing it.
    pub patch_merge: bool,
    /// `x-kubernetes-patch-strategy` contains `replace`: a map is replaced, not merged.
    pub patch_replace: bool,
    /// `x-kubernetes-patch-strategy` contains `retainKeys`.
    pub patch_retain_keys: bool,
    /// `x-kubernetes-patch-merge-key`.
    pub patch_merge_key: Option<String>,
    /// `x-kubernetes-list-type` with its map keys; `None` when the schema says nothing.
    pub list_type: Option<ListType>,
    /// `x-kubernetes-map-type: atomic` on the field.
    pub map_atomic: bool,
}

impl MergeRules {
    fn from_schema(schema: &Map<String, Value>) -> Option<Self> {
        let text = |key: &str| schema.get(key).and_then(Value::as_str);
        let strategies: Vec<&str> = text("x-kubernetes-patch-strategy")
            .map(|s| s.split(',').collect())
            .unwrap_or_default();
        let list_type = ListType::declared(schema);
        let rules = MergeRules {
            patch_merge: strategies.contains(&"merge"),
            patch_replace: strategies.contains(&"replace"),
            patch_retain_keys: strategies.contains(&"retainKeys"),
            patch_merge_key: text("x-kubernetes-patch-merge-key").map(String::from),
            list_type,
            map_atomic: text("x-kubernetes-map-type") == Some("atomic"),
        };
        (rules != MergeRules::default()).then_some(rules)
    }
}

/// A place in a kind's schema, walked field by field.
#[derive(Clone, Copy)]
pub struct SchemaNode<'a> {
    shapes: &'a Shapes,
    id: ShapeId,
}

impl std::fmt::Debug for SchemaNode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SchemaNode").field(&self.id).finish()
    }
}

impl<'a> SchemaNode<'a> {
    fn shape(&self) -> &'a Shape {
        &self.shapes.nodes[self.id]
    }

    /// The value of a struct's field or of a map's key, with the field's merge rules.
    pub fn child(self, name: &str) -> Option<(SchemaNode<'a>, Option<&'a MergeRules>)> {
        let at = |id| SchemaNode {
            shapes: self.shapes,
            id,
        };
        match self.shape() {
            Shape::Object(object) => {
                let field = object.fields.get(name)?;
                Some((at(field.shape), field.rules.as_ref()))
            }
            &Shape::Map(values) => Some((at(values), None)),
            _ => None,
        }
    }

    /// The elements of a list.
    pub fn items(self) -> Option<SchemaNode<'a>> {
        match self.shape() {
            &Shape::List(items) => Some(SchemaNode {
                shapes: self.shapes,
                id: items,
            }),
            _ => None,
        }
    }

    /// Follows field names (list elements are stepped into on the way): `["spec", "containers",
    /// "ports"]` is the ports of a container. Returns the node and the last field's rules.
    pub fn walk<S: AsRef<str>>(
        self,
        names: &[S],
    ) -> Option<(SchemaNode<'a>, Option<&'a MergeRules>)> {
        let mut node = self;
        let mut rules = None;
        for name in names {
            while let Some(items) = node.items() {
                node = items;
            }
            (node, rules) = node.child(name.as_ref())?;
        }
        Some((node, rules))
    }

    /// Whether the type is a struct replaced and owned as a whole (`x-kubernetes-map-type:
    /// atomic`, as label selectors).
    pub fn is_atomic(self) -> bool {
        matches!(self.shape(), Shape::Object(object) if object.atomic)
    }
}

pub(crate) struct Shapes {
    nodes: Vec<Shape>,
    named: HashMap<String, ShapeId>,
}

impl Shapes {
    pub fn new() -> Self {
        // Node 0 is the shared "unchecked" node.
        Shapes {
            nodes: vec![Shape::Unchecked],
            named: HashMap::new(),
        }
    }

    const UNCHECKED: ShapeId = 0;

    /// The node of the named definition, flattening it (and what it references) on first use.
    pub fn named(&mut self, name: &str, definitions: &Map<String, Value>) -> ShapeId {
        if let Some(&id) = self.named.get(name) {
            return id;
        }
        let Some(schema) = definitions.get(name) else {
            return Self::UNCHECKED;
        };
        // Reserve the node before descending so that cycles resolve to it.
        let id = self.nodes.len();
        self.nodes.push(Shape::Unchecked);
        self.named.insert(name.to_owned(), id);
        let shape = match self.shape_of(schema, definitions) {
            Shape::Object(object) => {
                let mut parts = name.rsplit('.');
                let go_type = match (parts.next(), parts.next()) {
                    (Some(kind), Some(package)) => format!("{package}.{kind}"),
                    _ => name.to_string(),
                };
                let mut object = Arc::try_unwrap(object).unwrap_or_else(|shared| (*shared).clone());
                object.go_type = Some(go_type.into());
                Shape::Object(Arc::new(object))
            }
            Shape::Scalar(_) => Shape::Unchecked,
            other => other,
        };
        self.nodes[id] = shape;
        id
    }

    fn node(&mut self, schema: &Value, definitions: &Map<String, Value>) -> ShapeId {
        if let Some(name) = alias(schema) {
            return self.named(name, definitions);
        }
        let shape = self.shape_of(schema, definitions);
        if matches!(shape, Shape::Unchecked) {
            return Self::UNCHECKED;
        }
        self.nodes.push(shape);
        self.nodes.len() - 1
    }

    fn shape_of(&mut self, schema: &Value, definitions: &Map<String, Value>) -> Shape {
        let Some(object) = schema.as_object() else {
            return Shape::Unchecked;
        };
        if let Some(name) = reference(schema) {
            let id = self.named(name, definitions);
            return self.nodes[id].clone();
        }
        if object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
            || object.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        {
            return Shape::Unchecked;
        }
        if let Some(Value::Object(properties)) = object.get("properties") {
            let fields = properties
                .iter()
                .map(|(field, schema)| {
                    let rules = schema.as_object().and_then(MergeRules::from_schema);
                    let shape = self.node(schema, definitions);
                    (field.as_str().into(), Field { shape, rules })
                })
                .collect();
            return Shape::Object(Arc::new(ObjectShape {
                go_type: None,
                fields,
                atomic: object.get("x-kubernetes-map-type").and_then(Value::as_str)
                    == Some("atomic"),
            }));
        }
        if let Some(Value::Array(all_of)) = object.get("allOf")
            && let [only] = all_of.as_slice()
        {
            return self.shape_of(only, definitions);
        }
        if let Some(items) = object.get("items") {
            return Shape::List(self.node(items, definitions));
        }
        match object.get("additionalProperties") {
            Some(values @ Value::Object(_)) => Shape::Map(self.node(values, definitions)),
            _ => Scalar::of(object).map_or(Shape::Unchecked, Shape::Scalar),
        }
    }

    /// The Go type a node decodes into, as Go's decoder prints it; `None` when unknown.
    fn go_type(&self, id: ShapeId) -> Option<String> {
        match &self.nodes[id] {
            Shape::Unchecked => None,
            Shape::Scalar(scalar) => Some(scalar.go_type().to_string()),
            Shape::Object(object) => object.go_type.as_deref().map(String::from),
            &Shape::Map(values) => Some(format!("map[string]{}", self.go_type(values)?)),
            &Shape::List(items) => Some(format!("[]{}", self.go_type(items)?)),
        }
    }

    /// The first value of `value` whose JSON type does not fit shape `id`. `go_struct` and
    /// `fields` say where `value` sits: the innermost struct and the field path to it.
    pub fn type_mismatch(
        &self,
        id: ShapeId,
        value: &Value,
        go_struct: &str,
        fields: &mut Vec<String>,
    ) -> Option<TypeMismatch> {
        match (&self.nodes[id], value) {
            (_, Value::Null) | (Shape::Unchecked, _) => None,
            (Shape::Scalar(scalar), _) => {
                let value = scalar.mismatch(value)?;
                Some(TypeMismatch {
                    value,
                    go_struct: go_struct.to_string(),
                    field: fields.join("."),
                    go_type: scalar.go_type().to_string(),
                })
            }
            (Shape::Object(object), Value::Object(map)) => {
                let inner = object
                    .go_type
                    .as_deref()
                    .map(|t| t.rsplit('.').next().unwrap_or(t))
                    .unwrap_or(go_struct);
                for (name, child) in map {
                    let Some(field) = object.fields.get(name.as_str()) else {
                        continue;
                    };
                    fields.push(name.clone());
                    let found = self.type_mismatch(field.shape, child, inner, fields);
                    fields.pop();
                    if found.is_some() {
                        return found;
                    }
                }
                None
            }
            (&Shape::Map(values), Value::Object(map)) => map
                .values()
                .find_map(|child| self.type_mismatch(values, child, go_struct, fields)),
            (&Shape::List(items), Value::Array(elements)) => elements
                .iter()
                .find_map(|child| self.type_mismatch(items, child, go_struct, fields)),
            (_, other) => self
                .go_type(id)
                .filter(|_| !fields.is_empty())
                .map(|go_type| TypeMismatch {
                    value: json_kind(other).to_string(),
                    go_struct: go_struct.to_string(),
                    field: fields.join("."),
                    go_type,
                }),
        }
    }

    /// An object that knows only its `metadata` (of shape `object_meta`): what a kind without
    /// a known type merges by.
    pub fn untyped_kind(&mut self, object_meta: ShapeId) -> ShapeId {
        let fields = HashMap::from([(
            "metadata".into(),
            Field {
                shape: object_meta,
                rules: None,
            },
        )]);
        self.nodes.push(Shape::Object(Arc::new(ObjectShape {
            go_type: None,
            fields,
            atomic: false,
        })));
        self.nodes.len() - 1
    }

    /// The node of a flattened definition.
    pub fn at(&self, id: ShapeId) -> SchemaNode<'_> {
        SchemaNode { shapes: self, id }
    }

    /// Removes every field of `value` that shape `id` does not know, appending its path.
    pub fn prune_unknown_fields(
        &self,
        id: ShapeId,
        value: &mut Value,
        path: &mut String,
        found: &mut Vec<String>,
    ) {
        let at = |path: &mut String, name: &str| {
            let length = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(name);
            length
        };
        match (&self.nodes[id], value) {
            (Shape::Object(shape), Value::Object(object)) => {
                let mut unknown = Vec::new();
                for (field, child) in object.iter_mut() {
                    let length = at(path, field);
                    match shape.fields.get(field.as_str()) {
                        Some(known) => self.prune_unknown_fields(known.shape, child, path, found),
                        None => {
                            found.push(path.clone());
                            unknown.push(field.clone());
                        }
                    }
                    path.truncate(length);
                }
                for field in unknown {
                    object.remove(&field);
                }
            }
            (&Shape::Map(values), Value::Object(object)) => {
                for (key, child) in object.iter_mut() {
                    let length = at(path, key);
                    self.prune_unknown_fields(values, child, path, found);
                    path.truncate(length);
                }
            }
            (&Shape::List(items), Value::Array(elements)) => {
                for (index, element) in elements.iter_mut().enumerate() {
                    let length = path.len();
                    path.push_str(&format!("[{index}]"));
                    self.prune_unknown_fields(items, element, path, found);
                    path.truncate(length);
                }
            }
            _ => {}
        }
    }
}

/// The definition a schema stands for: `{"$ref": …}` or `{"allOf": [{"$ref": …}], "description": …}`.
fn alias(schema: &Value) -> Option<&str> {
    if let Some(name) = reference(schema) {
        return Some(name);
    }
    match schema.get("allOf")?.as_array()?.as_slice() {
        [only] if schema.get("properties").is_none() => reference(only),
        _ => None,
    }
}

fn reference(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(REF_PREFIX)
}
