//! The subset of Go templates that `KwokctlResource` templates use: `{{ ... }}` actions (with
//! `{{-`/`-}}` whitespace trimming) holding a pipeline of terms and functions.
//!
//! Terms: `Name`, `Namespace`, `Index`, `.` (all parameters), `.a.b` (a parameter), string and
//! number literals. Functions: `Quote x` (JSON string), `toJson`/`toYaml`/`YAML x` (JSON text,
//! which YAML reads as flow style), `AddCIDR cidr n`, `AddIP ip n`, `default d x`, `add a b`.
//! Control structures (`if`, `range`, `with`, ...) are not supported and say so.

use anyhow::{anyhow, bail};
use serde_json::Value;

/// Renders `template` for object `index` named `name` in `namespace`.
pub fn render(
    template: &str,
    params: &Value,
    name: &str,
    namespace: &str,
    index: usize,
) -> anyhow::Result<String> {
    let scope = Scope {
        params,
        name,
        namespace,
        index,
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let mut action = &rest[open + 2..];
        if let Some(stripped) = action.strip_prefix('-') {
            text = text.trim_end();
            action = stripped;
        }
        out.push_str(text);
        let close = action
            .find("}}")
            .ok_or_else(|| anyhow!("template: unclosed action"))?;
        let mut body = &action[..close];
        let mut after = &action[close + 2..];
        if let Some(stripped) = body.strip_suffix('-') {
            body = stripped;
            after = after.trim_start();
        }
        let body = body.trim();
        if !body.starts_with("/*") {
            let value = scope.pipeline(body)?;
            out.push_str(&print(&value));
        }
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

struct Scope<'a> {
    params: &'a Value,
    name: &'a str,
    namespace: &'a str,
    index: usize,
}

fn print(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn tokens(expr: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '`' {
            let quote = c;
            let mut s = String::from(c);
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                s.push(c);
                if c == '\\' && quote == '"' {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                } else if c == quote {
                    closed = true;
                    break;
                }
            }
            if !closed {
                bail!("template: unterminated string in {expr:?}");
            }
            out.push(s);
        } else if c == '|' || c == '(' || c == ')' {
            out.push(c.to_string());
            chars.next();
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '|' || c == '(' || c == ')' {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    Ok(out)
}

impl Scope<'_> {
    fn pipeline(&self, expr: &str) -> anyhow::Result<Value> {
        let toks = tokens(expr)?;
        if let Some(first) = toks.first()
            && matches!(
                first.as_str(),
                "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
            )
        {
            bail!("template: {first:?} is not supported in kwokctl resource templates");
        }
        let mut pos = 0;
        self.parse_pipeline(&toks, &mut pos)
    }

    fn parse_pipeline(&self, toks: &[String], pos: &mut usize) -> anyhow::Result<Value> {
        let mut value = self.command(toks, pos, None)?;
        while *pos < toks.len() && toks[*pos] == "|" {
            *pos += 1;
            value = self.command(toks, pos, Some(value))?;
        }
        Ok(value)
    }

    /// One command: a term, or a function with arguments (plus the piped value as the last one).
    fn command(
        &self,
        toks: &[String],
        pos: &mut usize,
        piped: Option<Value>,
    ) -> anyhow::Result<Value> {
        let head = toks
            .get(*pos)
            .ok_or_else(|| anyhow!("template: empty command"))?
            .clone();
        *pos += 1;
        let mut args = Vec::new();
        while *pos < toks.len() && toks[*pos] != "|" && toks[*pos] != ")" {
            args.push(self.term(toks, pos)?);
        }
        if let Some(v) = piped {
            args.push(v);
        }
        if is_function(&head) {
            return call(&head, &args);
        }
        if !args.is_empty() {
            bail!("template: {head:?} is not a function");
        }
        self.value_of(&head)
    }

    fn term(&self, toks: &[String], pos: &mut usize) -> anyhow::Result<Value> {
        let tok = toks[*pos].clone();
        *pos += 1;
        if tok == "(" {
            let v = self.parse_pipeline(toks, pos)?;
            if toks.get(*pos).map(String::as_str) != Some(")") {
                bail!("template: missing ')'");
            }
            *pos += 1;
            return Ok(v);
        }
        if is_function(&tok) && !matches!(tok.as_str(), "Name" | "Namespace" | "Index") {
            bail!("template: function {tok:?} needs parentheses as an argument");
        }
        self.value_of(&tok)
    }

    fn value_of(&self, tok: &str) -> anyhow::Result<Value> {
        match tok {
            "Name" => return Ok(Value::String(self.name.to_string())),
            "Namespace" => return Ok(Value::String(self.namespace.to_string())),
            "Index" => return Ok(Value::from(self.index)),
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            "nil" => return Ok(Value::Null),
            _ => {}
        }
        if tok == "." {
            return Ok(self.params.clone());
        }
        if let Some(path) = tok.strip_prefix('.') {
            let mut cur = self.params;
            for key in path.split('.') {
                cur = match cur.get(key) {
                    Some(v) => v,
                    None => return Ok(Value::Null),
                };
            }
            return Ok(cur.clone());
        }
        if tok.starts_with('"') {
            return serde_json::from_str(tok).map_err(|e| anyhow!("template: {tok}: {e}"));
        }
        if let Some(raw) = tok.strip_prefix('`').and_then(|t| t.strip_suffix('`')) {
            return Ok(Value::String(raw.to_string()));
        }
        if let Ok(n) = serde_json::from_str::<serde_json::Number>(tok) {
            return Ok(Value::Number(n));
        }
        bail!("template: unknown term {tok:?}")
    }
}

fn is_function(name: &str) -> bool {
    matches!(
        name,
        "Quote" | "quote" | "toJson" | "toYaml" | "YAML" | "AddCIDR" | "AddIP" | "default" | "add"
    )
}

fn int_of(v: &Value) -> anyhow::Result<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| anyhow!("template: {n} is not an integer")),
        Value::String(s) => s
            .parse()
            .map_err(|_| anyhow!("template: {s:?} is not an integer")),
        other => bail!("template: {other} is not an integer"),
    }
}

fn call(name: &str, args: &[Value]) -> anyhow::Result<Value> {
    let want = |n: usize| -> anyhow::Result<()> {
        if args.len() != n {
            bail!("template: {name} takes {n} arguments, got {}", args.len());
        }
        Ok(())
    };
    match name {
        "Quote" | "quote" => {
            want(1)?;
            Ok(Value::String(Value::String(print(&args[0])).to_string()))
        }
        "toJson" | "toYaml" | "YAML" => {
            if args.is_empty() {
                bail!("template: {name} takes an argument");
            }
            Ok(Value::String(args[0].to_string()))
        }
        "AddCIDR" | "AddIP" => {
            want(2)?;
            let base = print(&args[0]);
            let n = int_of(&args[1])?;
            let n = u128::try_from(n).map_err(|_| anyhow!("template: {name}: negative offset"))?;
            let out = if name == "AddCIDR" {
                crate::scale::add_cidr(&base, n)?
            } else {
                crate::scale::add_ip(&base, n)?
            };
            Ok(Value::String(out))
        }
        "default" => {
            want(2)?;
            let empty = match &args[1] {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Bool(b) => !b,
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::Number(n) => n.as_f64() == Some(0.0),
            };
            Ok(if empty {
                args[0].clone()
            } else {
                args[1].clone()
            })
        }
        "add" => {
            want(2)?;
            Ok(Value::from(int_of(&args[0])? + int_of(&args[1])?))
        }
        _ => bail!("template: unknown function {name:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str) -> String {
        render(
            t,
            &json!({"a": {"b": "x"}, "n": 3, "list": [1, 2], "cidr": "10.0.0.0/24"}),
            "obj-000001",
            "ns",
            1,
        )
        .unwrap()
    }

    #[test]
    fn terms_and_functions() {
        assert_eq!(r("name: {{ Name }}"), "name: obj-000001");
        assert_eq!(r("{{Namespace}}/{{ Index }}"), "ns/1");
        assert_eq!(r("v: {{ .a.b }}"), "v: x");
        assert_eq!(r("v: {{ .missing }}"), "v: ");
        assert_eq!(r("v: {{ Quote .n }}"), "v: \"3\"");
        assert_eq!(r("v: {{ .n | Quote }}"), "v: \"3\"");
        assert_eq!(r("v: {{ .list | toJson }}"), "v: [1,2]");
        assert_eq!(r("v: {{ AddCIDR .cidr Index }}"), "v: 10.0.1.0/24");
        assert_eq!(
            r("v: {{ AddIP \"10.0.0.1\" (add Index 1) }}"),
            "v: 10.0.0.3"
        );
        assert_eq!(r("v: {{ .missing | default \"d\" }}"), "v: d");
        assert_eq!(r("a:\n  {{- \"b\" -}}\n  c"), "a:bc");
    }

    #[test]
    fn unsupported_constructs_fail() {
        assert!(render("{{ if .a }}x{{ end }}", &json!({}), "n", "", 0).is_err());
        assert!(render("{{ Name", &json!({}), "n", "", 0).is_err());
        assert!(render("{{ Bogus }}", &json!({}), "n", "", 0).is_err());
    }
}
