//! A small jq evaluator for Stage selector keys and `*From` expressions.
//!
//! Stage files select objects with jq expressions such as `.metadata.deletionTimestamp`,
//! `.metadata.labels["app"]` or `.status.conditions.[] | select( .type == "Ready" ) | .status`.
//! This module implements the part of jq those expressions use: paths (`.a`, `.a.b`, `."a"`,
//! `.["a"]`, `.[0]`, `.[]`, `.a.[]`, `?`), pipes, parentheses, literals, `==`, `!=`, `and`, `or`,
//! `not`, `select(...)`, `length` and the alternative operator `//`. An expression outside that
//! subset is rejected when the Stage is loaded, so an unsupported Stage fails loudly instead of
//! silently never matching.
//!
//! Like jq, an expression produces a stream of values; an evaluation error (for example indexing
//! a string) produces no values, which is how upstream treats errors ("no value").

use std::borrow::Cow;

use serde_json::Value;

/// A compiled jq expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    source: String,
    ast: Ast,
}

#[derive(Debug, Clone, PartialEq)]
enum Ast {
    Identity,
    /// `.name` / `.["name"]` on the input of `Ast::Index.0`.
    Field(Box<Ast>, String, bool),
    Index(Box<Ast>, i64, bool),
    Iterate(Box<Ast>, bool),
    Pipe(Box<Ast>, Box<Ast>),
    Literal(Value),
    Eq(Box<Ast>, Box<Ast>, bool),
    And(Box<Ast>, Box<Ast>),
    Or(Box<Ast>, Box<Ast>),
    Alt(Box<Ast>, Box<Ast>),
    Not,
    Length,
    Select(Box<Ast>),
}

impl Query {
    /// Parses an expression; the error says what is not understood and where.
    pub fn parse(source: &str) -> Result<Query, String> {
        let tokens = lex(source)?;
        let mut p = Parser { tokens, pos: 0 };
        let ast = p.pipe()?;
        if p.pos != p.tokens.len() {
            return Err(format!(
                "unexpected {:?} at token {} in jq expression {source:?}",
                p.tokens[p.pos], p.pos
            ));
        }
        Ok(Query {
            source: source.to_string(),
            ast,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the expression; an evaluation error yields no values.
    pub fn eval<'a>(&self, input: &'a Value) -> Vec<Cow<'a, Value>> {
        eval(&self.ast, Cow::Borrowed(input)).unwrap_or_default()
    }

    /// The first non-null result.
    pub fn first(&self, input: &Value) -> Option<Value> {
        self.eval(input)
            .into_iter()
            .find(|v| !v.is_null())
            .map(Cow::into_owned)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    Ident(String),
    Str(String),
    Num(f64),
    LBracket,
    RBracket,
    LParen,
    RParen,
    Pipe,
    Question,
    EqEq,
    NotEq,
    SlashSlash,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '.' => {
                out.push(Tok::Dot);
                i += 1
            }
            '[' => {
                out.push(Tok::LBracket);
                i += 1
            }
            ']' => {
                out.push(Tok::RBracket);
                i += 1
            }
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            '?' => {
                out.push(Tok::Question);
                i += 1
            }
            '=' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::EqEq);
                i += 2
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::NotEq);
                i += 2
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                out.push(Tok::SlashSlash);
                i += 2
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("unterminated string in {s:?}")),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let e = chars
                                .get(i + 1)
                                .ok_or_else(|| format!("unterminated string in {s:?}"))?;
                            text.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                other => *other,
                            });
                            i += 2;
                        }
                        Some(c) => {
                            text.push(*c);
                            i += 1
                        }
                    }
                }
                out.push(Tok::Str(text));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                out.push(Tok::Num(
                    text.parse()
                        .map_err(|_| format!("bad number {text:?} in {s:?}"))?,
                ));
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(format!(
                    "unsupported character {other:?} in jq expression {s:?}"
                ));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_ident(&mut self, name: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(i)) if i == name) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: &Tok) -> Result<(), String> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(format!("expected {t:?}, found {:?}", self.peek()))
        }
    }

    fn pipe(&mut self) -> Result<Ast, String> {
        let mut left = self.alt()?;
        while self.eat(&Tok::Pipe) {
            let right = self.alt()?;
            left = Ast::Pipe(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn alt(&mut self) -> Result<Ast, String> {
        let mut left = self.or()?;
        while self.eat(&Tok::SlashSlash) {
            let right = self.or()?;
            left = Ast::Alt(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn or(&mut self) -> Result<Ast, String> {
        let mut left = self.and()?;
        while self.eat_ident("or") {
            let right = self.and()?;
            left = Ast::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Ast, String> {
        let mut left = self.cmp()?;
        while self.eat_ident("and") {
            let right = self.cmp()?;
            left = Ast::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }
    fn cmp(&mut self) -> Result<Ast, String> {
        let left = self.postfix()?;
        if self.eat(&Tok::EqEq) {
            let right = self.postfix()?;
            return Ok(Ast::Eq(Box::new(left), Box::new(right), true));
        }
        if self.eat(&Tok::NotEq) {
            let right = self.postfix()?;
            return Ok(Ast::Eq(Box::new(left), Box::new(right), false));
        }
        Ok(left)
    }

    fn postfix(&mut self) -> Result<Ast, String> {
        let mut node = self.term()?;
        loop {
            if self.peek() == Some(&Tok::Dot) {
                // `.name`, `."name"` or `.[...]` after a term.
                match self.tokens.get(self.pos + 1) {
                    Some(Tok::Ident(name)) => {
                        let name = name.clone();
                        self.pos += 2;
                        node = Ast::Field(Box::new(node), name, self.eat(&Tok::Question));
                    }
                    Some(Tok::Str(name)) => {
                        let name = name.clone();
                        self.pos += 2;
                        node = Ast::Field(Box::new(node), name, self.eat(&Tok::Question));
                    }
                    Some(Tok::LBracket) => {
                        self.pos += 1;
                        node = self.bracket(node)?;
                    }
                    _ => return Ok(node),
                }
            } else if self.peek() == Some(&Tok::LBracket) {
                node = self.bracket(node)?;
            } else {
                return Ok(node);
            }
        }
    }

    /// Parses `[]`, `["x"]` or `[n]` applied to `node`; the current token is `[`.
    fn bracket(&mut self, node: Ast) -> Result<Ast, String> {
        self.expect(&Tok::LBracket)?;
        let out = match self.peek().cloned() {
            Some(Tok::RBracket) => {
                self.pos += 1;
                Ast::Iterate(Box::new(node), false)
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                self.expect(&Tok::RBracket)?;
                Ast::Field(Box::new(node), s, false)
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                self.expect(&Tok::RBracket)?;
                Ast::Index(Box::new(node), n as i64, false)
            }
            other => return Err(format!("unsupported index {other:?}")),
        };
        let optional = self.eat(&Tok::Question);
        Ok(match out {
            Ast::Iterate(n, _) => Ast::Iterate(n, optional),
            Ast::Field(n, s, _) => Ast::Field(n, s, optional),
            Ast::Index(n, i, _) => Ast::Index(n, i, optional),
            other => other,
        })
    }

    fn term(&mut self) -> Result<Ast, String> {
        match self.peek().cloned() {
            Some(Tok::Dot) => {
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Ident(name)) => {
                        self.pos += 1;
                        let q = self.eat(&Tok::Question);
                        Ok(Ast::Field(Box::new(Ast::Identity), name, q))
                    }
                    Some(Tok::Str(name)) => {
                        self.pos += 1;
                        let q = self.eat(&Tok::Question);
                        Ok(Ast::Field(Box::new(Ast::Identity), name, q))
                    }
                    Some(Tok::LBracket) => self.bracket(Ast::Identity),
                    _ => Ok(Ast::Identity),
                }
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Ast::Literal(Value::String(s)))
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Ast::Literal(if n.fract() == 0.0 && n.abs() < 9e15 {
                    Value::from(n as i64)
                } else {
                    serde_json::Number::from_f64(n)
                        .map(Value::Number)
                        .unwrap_or(Value::Null)
                }))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let inner = self.pipe()?;
                self.expect(&Tok::RParen)?;
                Ok(inner)
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                match name.as_str() {
                    "true" => Ok(Ast::Literal(Value::Bool(true))),
                    "false" => Ok(Ast::Literal(Value::Bool(false))),
                    "null" => Ok(Ast::Literal(Value::Null)),
                    "not" => Ok(Ast::Not),
                    "length" => Ok(Ast::Length),
                    "select" => {
                        self.expect(&Tok::LParen)?;
                        let inner = self.pipe()?;
                        self.expect(&Tok::RParen)?;
                        Ok(Ast::Select(Box::new(inner)))
                    }
                    other => Err(format!("unsupported jq function {other:?}")),
                }
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

type Out<'a> = Result<Vec<Cow<'a, Value>>, ()>;

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

fn lift<'a>(v: Cow<'a, Value>, f: impl Fn(&Value) -> Option<Value>) -> Option<Cow<'a, Value>> {
    match v {
        Cow::Borrowed(b) => f(b).map(Cow::Owned),
        Cow::Owned(o) => f(&o).map(Cow::Owned),
    }
}

fn eval<'a>(ast: &Ast, input: Cow<'a, Value>) -> Out<'a> {
    match ast {
        Ast::Identity => Ok(vec![input]),
        Ast::Literal(v) => Ok(vec![Cow::Owned(v.clone())]),
        Ast::Field(base, name, optional) => {
            let mut out = Vec::new();
            for v in eval(base, input)? {
                match v {
                    Cow::Borrowed(Value::Object(m)) => {
                        out.push(Cow::Borrowed(m.get(name).unwrap_or(&Value::Null)))
                    }
                    Cow::Owned(Value::Object(mut m)) => {
                        out.push(Cow::Owned(m.remove(name).unwrap_or(Value::Null)))
                    }
                    v if v.is_null() => out.push(Cow::Owned(Value::Null)),
                    _ if *optional => {}
                    _ => return Err(()),
                }
            }
            Ok(out)
        }
        Ast::Index(base, i, optional) => {
            let mut out = Vec::new();
            for v in eval(base, input)? {
                let pick = |a: &Vec<Value>| {
                    let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                    usize::try_from(idx).ok().and_then(|x| a.get(x)).cloned()
                };
                match v {
                    Cow::Borrowed(Value::Array(a)) => {
                        let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                        out.push(Cow::Borrowed(
                            usize::try_from(idx)
                                .ok()
                                .and_then(|x| a.get(x))
                                .unwrap_or(&Value::Null),
                        ))
                    }
                    Cow::Owned(Value::Array(a)) => {
                        out.push(Cow::Owned(pick(&a).unwrap_or(Value::Null)))
                    }
                    v if v.is_null() => out.push(Cow::Owned(Value::Null)),
                    _ if *optional => {}
                    _ => return Err(()),
                }
            }
            Ok(out)
        }
        Ast::Iterate(base, optional) => {
            let mut out = Vec::new();
            for v in eval(base, input)? {
                match v {
                    Cow::Borrowed(Value::Array(a)) => out.extend(a.iter().map(Cow::Borrowed)),
                    Cow::Borrowed(Value::Object(m)) => out.extend(m.values().map(Cow::Borrowed)),
                    Cow::Owned(Value::Array(a)) => out.extend(a.into_iter().map(Cow::Owned)),
                    Cow::Owned(Value::Object(m)) => {
                        out.extend(m.into_iter().map(|(_, v)| Cow::Owned(v)))
                    }
                    _ if *optional => {}
                    _ => return Err(()),
                }
            }
            Ok(out)
        }
        Ast::Pipe(left, right) => {
            let mut out = Vec::new();
            for v in eval(left, input)? {
                out.extend(eval(right, v)?);
            }
            Ok(out)
        }
        Ast::Eq(left, right, equal) => {
            let l = eval(left, input.clone())?;
            let r = eval(right, input)?;
            let mut out = Vec::new();
            for a in &r {
                for b in &l {
                    out.push(Cow::Owned(Value::Bool(json_eq(a, b) == *equal)));
                }
            }
            Ok(out)
        }
        Ast::And(left, right) | Ast::Or(left, right) => {
            let is_and = matches!(ast, Ast::And(..));
            let mut out = Vec::new();
            for a in eval(left, input.clone())? {
                let a = truthy(&a);
                if is_and && !a || !is_and && a {
                    out.push(Cow::Owned(Value::Bool(a)));
                    continue;
                }
                for b in eval(right, input.clone())? {
                    out.push(Cow::Owned(Value::Bool(truthy(&b))));
                }
            }
            Ok(out)
        }
        Ast::Alt(left, right) => {
            let l: Vec<_> = eval(left, input.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|v| truthy(v))
                .collect();
            if l.is_empty() {
                eval(right, input)
            } else {
                Ok(l)
            }
        }
        Ast::Not => Ok(vec![Cow::Owned(Value::Bool(!truthy(&input)))]),
        Ast::Length => lift(input, |v| match v {
            Value::Null => Some(Value::from(0)),
            Value::String(s) => Some(Value::from(s.chars().count())),
            Value::Array(a) => Some(Value::from(a.len())),
            Value::Object(m) => Some(Value::from(m.len())),
            Value::Number(n) => Some(Value::from(n.as_f64().unwrap_or(0.0).abs())),
            Value::Bool(_) => None,
        })
        .map(|v| vec![v])
        .ok_or(()),
        Ast::Select(cond) => {
            let mut out = Vec::new();
            for c in eval(cond, input.clone())? {
                if truthy(&c) {
                    out.push(input.clone());
                }
            }
            Ok(out)
        }
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The string form a selector compares with `values`: strings as they are, booleans and
/// numbers as JSON prints them; other values have none.
pub fn comparable(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn paths() {
        let pod = json!({"metadata": {"name": "p", "labels": {"a.b/c": "x"}}, "status": {"phase": "Running"}});
        assert_eq!(run(".status.phase", &pod), vec![json!("Running")]);
        assert_eq!(run(".metadata.deletionTimestamp", &pod), vec![Value::Null]);
        assert_eq!(run(".metadata.labels[\"a.b/c\"]", &pod), vec![json!("x")]);
        assert_eq!(run(".metadata.labels.\"a.b/c\"", &pod), vec![json!("x")]);
        assert_eq!(run(".nope.deeper.still", &pod), vec![Value::Null]);
        // Indexing a string is an error: no values.
        assert!(run(".metadata.name.x", &pod).is_empty());
        assert_eq!(run(".metadata.name.x?", &pod), Vec::<Value>::new());
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
            run(".status.conditions[1].status", &node),
            vec![json!("True")]
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
    fn owner_kinds() {
        let pod = json!({"metadata": {"ownerReferences": [{"kind": "Job", "name": "j"}]}});
        assert_eq!(
            run(".metadata.ownerReferences.[].kind", &pod),
            vec![json!("Job")]
        );
    }

    #[test]
    fn rejects_unsupported() {
        assert!(Query::parse(".a | map(.b)").unwrap_err().contains("map"));
        assert!(Query::parse(".a +").is_err());
        assert!(Query::parse("\"open").is_err());
    }
}
