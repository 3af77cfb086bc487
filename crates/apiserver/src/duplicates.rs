//! Duplicate fields in a JSON request body, which `fieldValidation=Strict` rejects and `Warn`
//! reports, as kube-apiserver's strict decoder does. A JSON object with a repeated key decodes
//! silently to its last value, so the body is walked once more without building anything.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The paths of repeated keys (`metadata.name`, `spec.containers[0].image`), in body order.
/// A body that is not valid JSON yields nothing here; decoding reports it.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut walk = Walk {
        path: Vec::new(),
        found: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    if Node(&mut walk).deserialize(&mut de).is_err() {
        return Vec::new();
    }
    walk.found
}

enum Segment {
    Key(String),
    Index(usize),
}

struct Walk {
    path: Vec<Segment>,
    found: Vec<String>,
}

impl Walk {
    fn render(&self, last: &str) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(last);
        out
    }
}

struct Node<'w>(&'w mut Walk);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            self.0.path.push(Segment::Index(index));
            let more = seq.next_element_seed(Node(&mut *self.0))?;
            self.0.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                let path = self.0.render(&key);
                if !self.0.found.contains(&path) {
                    self.0.found.push(path);
                }
            }
            self.0.path.push(Segment::Key(key.clone()));
            map.next_value_seed(Node(&mut *self.0))?;
            self.0.path.pop();
            keys.push(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_repeated_keys_at_any_depth() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"name":"c","image":"x","image":"y"}]},"kind":"Pod","kind":"Pod"}"#;
        assert_eq!(
            duplicate_fields(body),
            ["metadata.name", "spec.containers[0].image", "kind"]
        );
    }

    #[test]
    fn clean_and_invalid_bodies_have_none() {
        assert!(duplicate_fields(br#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#).is_empty());
        assert!(duplicate_fields(b"{not json").is_empty());
    }
}
