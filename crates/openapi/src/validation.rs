//! Unknown-field detection (`fieldValidation=Strict`) over a compact shape tree.
//!
//! The catalog's schemas are flattened once into [`Shapes`]: an arena where every node says only
//! what matters for finding unknown fields (an object with known fields, a map, a list, or
//! something whose contents are not checked). Named schemas become one node each, so recursive
//! types (JSONSchemaProps) are cycles in the arena rather than infinite trees.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::catalog::REF_PREFIX;

pub(crate) type ShapeId = usize;

#[derive(Debug, Clone)]
enum Shape {
    /// Scalars, int-or-string, preserved-unknown-fields and untyped objects: nothing to check.
    Unchecked,
    /// A struct: only these fields are known.
    Object(HashMap<Box<str>, ShapeId>),
    /// `additionalProperties`: any key, values of one shape.
    Map(ShapeId),
    /// `items`: elements of one shape.
    List(ShapeId),
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
        let shape = self.shape_of(schema, definitions);
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
                .map(|(field, schema)| (field.as_str().into(), self.node(schema, definitions)))
                .collect();
            return Shape::Object(fields);
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
            _ => Shape::Unchecked,
        }
    }

    /// Appends the path of every field of `value` that shape `id` does not know.
    pub fn unknown_fields(
        &self,
        id: ShapeId,
        value: &Value,
        path: &mut String,
        found: &mut Vec<String>,
    ) {
        match (&self.nodes[id], value) {
            (Shape::Object(fields), Value::Object(object)) => {
                for (field, child) in object {
                    let length = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(field);
                    match fields.get(field.as_str()) {
                        Some(&child_shape) => self.unknown_fields(child_shape, child, path, found),
                        None => found.push(path.clone()),
                    }
                    path.truncate(length);
                }
            }
            (&Shape::Map(values), Value::Object(object)) => {
                for (key, child) in object {
                    let length = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    self.unknown_fields(values, child, path, found);
                    path.truncate(length);
                }
            }
            (&Shape::List(items), Value::Array(elements)) => {
                for (index, element) in elements.iter().enumerate() {
                    let length = path.len();
                    path.push('[');
                    path.push_str(&index.to_string());
                    path.push(']');
                    self.unknown_fields(items, element, path, found);
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
