//! JSON Schema, as OpenAI's `tools[].function.parameters` and `response_format.json_schema`
//! carry it, made into what Gemini's `parametersJsonSchema` and `responseJsonSchema` honour,
//! without changing what it allows. Pure; no IO.
//!
//! Gemini takes a JSON Schema in both fields but honours only part of it. The API reference
//! lists what is supported (<https://ai.google.dev/api/generate-content#FIELDS.response_json_schema>,
//! the same list for `FunctionDeclaration.parametersJsonSchema`,
//! <https://ai.google.dev/api/caching#FunctionDeclaration>): `$id`, `$defs`, `$ref`, `$anchor`,
//! `type`, `format`, `title`, `description`, `enum` (for strings and numbers), `items`,
//! `prefixItems`, `minItems`, `maxItems`, `minimum`, `maximum`, `anyOf`, `oneOf` (interpreted
//! the same as `anyOf`), `properties`, `additionalProperties`, `required`, and the non-standard
//! `propertyOrdering`; "if `$ref` is set on a sub-schema, no other properties, except for those
//! starting as a `$`, may be set", and cyclic references are only "unrolled to a limited degree".
//!
//! So, per keyword:
//! - the supported ones pass as they are (`additionalProperties: false` included: the JSON
//!   Schema fields take it, unlike the OpenAPI-subset `parameters`);
//! - local `$ref`s are inlined (so a `$ref` may have siblings, as pydantic writes them) and
//!   `$defs` / `definitions` dropped; a recursive `$ref` cannot be inlined and is refused;
//! - `const` of a string or number becomes a one-value `enum`; `nullable: true` (OpenAPI 3.0)
//!   adds `"null"` to `type`; `items` as an array (draft 4 to 2019-09 tuples) becomes
//!   `prefixItems`; a one-element `oneOf` becomes `anyOf`; `allOf` and a `$ref` with siblings
//!   are merged when their keywords do not overlap (then "all of" is "each of them");
//! - annotations and unknown keywords, which JSON Schema does not validate with, pass as they
//!   are, except the identifiers `$schema`, `$id`, `$anchor`, `$comment`, which mean nothing
//!   once references are inlined;
//! - the constraints on a value Gemini does not enforce (`pattern`, `minLength`, `maxLength`,
//!   `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `uniqueItems`, `minProperties`,
//!   `maxProperties`) and a `oneOf` of several schemas (which Gemini reads as `anyOf`): the
//!   model still sees them, written into the schema's `description` (`pattern: ^[A-Z]+$`), as
//!   the guidance they are to a model that is not constrained to the schema. When the caller
//!   asked for exact adherence (`strict: true` on the tool or the `json_schema`), Gemini cannot
//!   give it for them: they are refused, as below;
//! - the keywords that combine or condition schemas in ways Gemini has no form for (`not`,
//!   `if` / `then` / `else`, `patternProperties`, `dependentSchemas`, ...) are refused with
//!   [`ErrorKind::InvalidRequest`](gateway_core::ErrorKind::InvalidRequest), naming the
//!   keyword's path (`tools[0].function.parameters.properties.when.not`).

use gateway_core::{Error, Result};
use serde_json::{Map, Value};

use crate::PROVIDER;

/// Constraints on one value that Gemini does not enforce: written into the description as
/// guidance, or refused under `strict`.
const HINTED: &[&str] = &[
    "multipleOf",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// Keywords of JSON Schema 2020-12 (and earlier drafts) that constrain instances in ways Gemini
/// has no form for; each is refused by name.
const REFUSED: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "dependencies",
    "patternProperties",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "additionalItems",
    "$dynamicRef",
    "$recursiveRef",
];

/// Identifiers and comments, dropped: without a validation meaning once `$ref`s are inlined.
const DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$comment",
    "$vocabulary",
    "$defs",
    "definitions",
];

/// Keywords that only describe (JSON Schema's meta-data vocabulary): when two merged schemas both
/// have one, the more specific (the outer schema, a `$ref`'s siblings) wins.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// The most schema nodes one conversion may produce (inlining shared `$defs` copies them), so a
/// small document cannot expand without bound.
const MAX_NODES: usize = 10_000;

/// `schema` as Gemini's JSON Schema fields take it; `at` is the request field it came from
/// (`tools[0].function.parameters`), the start of every error's `param`. `strict`: the caller
/// asked for exact adherence, so constraints Gemini does not enforce are refused rather than
/// described.
pub(crate) fn convert(schema: &Value, at: &str, strict: bool) -> Result<Value> {
    let mut converter = Converter {
        root: schema,
        at,
        strict,
        expanding: Vec::new(),
        nodes: 0,
    };
    converter.node(schema, at).map(Value::Object)
}

struct Converter<'a> {
    root: &'a Value,
    at: &'a str,
    strict: bool,
    /// The JSON pointers of the `$ref` targets being inlined, innermost last.
    expanding: Vec<String>,
    nodes: usize,
}

impl Converter<'_> {
    fn node(&mut self, schema: &Value, path: &str) -> Result<Map<String, Value>> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(refuse(
                self.at,
                format!("the schema has more than {MAX_NODES} nodes once its $refs are inlined"),
            ));
        }
        match schema {
            // `true` allows everything, like `{}`.
            Value::Bool(true) => Ok(Map::new()),
            Value::Bool(false) => Err(refuse(
                path,
                "a `false` schema (nothing is valid) has no Gemini counterpart",
            )),
            Value::Object(map) => match map.get("$ref") {
                Some(reference) => self.reference(map, reference, path),
                None => self.object(map, path),
            },
            _ => Err(refuse(path, "a schema must be an object or a boolean")),
        }
    }

    /// A schema with a `$ref`: the target inlined, merged with the siblings.
    fn reference(
        &mut self,
        map: &Map<String, Value>,
        reference: &Value,
        path: &str,
    ) -> Result<Map<String, Value>> {
        let at = format!("{path}.$ref");
        let Some(pointer) = reference.as_str().and_then(|r| r.strip_prefix('#')) else {
            return Err(refuse(
                &at,
                "only local references (`#/$defs/...`) can be inlined for Gemini",
            ));
        };
        if self.expanding.iter().any(|p| p == pointer) || pointer.is_empty() {
            return Err(refuse(
                &at,
                format!(
                    "`#{pointer}` is recursive: Gemini unrolls recursion only to a limited depth, \
                     which changes the schema"
                ),
            ));
        }
        let Some(target) = self.root.pointer(pointer) else {
            return Err(refuse(&at, format!("`#{pointer}` points to nothing")));
        };
        let target_path = format!(
            "{}{}",
            self.at,
            pointer
                .split('/')
                .skip(1)
                .map(|s| format!(".{}", s.replace("~1", "/").replace("~0", "~")))
                .collect::<String>()
        );
        self.expanding.push(pointer.to_owned());
        let inlined = self.node(target, &target_path);
        self.expanding.pop();
        let inlined = inlined?;
        let mut siblings = map.clone();
        siblings.remove("$ref");
        if siblings.is_empty() {
            return Ok(inlined);
        }
        let siblings = self.object(&siblings, path)?;
        merge(inlined, siblings, &at)
    }

    /// A schema object without `$ref`, keyword by keyword.
    fn object(&mut self, map: &Map<String, Value>, path: &str) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        let mut all_of = Vec::new();
        let mut hints = Vec::new();
        for (key, value) in map {
            let at = format!("{path}.{key}");
            match key.as_str() {
                "type" => {
                    let valid = match value {
                        Value::String(_) => true,
                        Value::Array(types) => types.iter().all(Value::is_string),
                        _ => false,
                    };
                    if !valid {
                        return Err(refuse(
                            &at,
                            "`type` must be a string or an array of strings",
                        ));
                    }
                    out.insert(key.clone(), value.clone());
                }
                "enum" => {
                    let values = enum_values(value, &at)?;
                    // With `const`, the one value `const` allows (checked there) is the `enum`.
                    if !map.contains_key("const") {
                        out.insert(key.clone(), values);
                    }
                }
                "const" => {
                    if !matches!(value, Value::String(_) | Value::Number(_)) {
                        return Err(refuse(
                            &at,
                            "Gemini takes `enum` (the form of `const` it has) only of strings and \
                             numbers",
                        ));
                    }
                    match map.get("enum") {
                        None => {}
                        Some(Value::Array(values)) if values.contains(value) => {}
                        Some(_) => {
                            return Err(refuse(&at, "`const` and `enum` allow no common value"));
                        }
                    }
                    out.insert("enum".into(), Value::Array(vec![value.clone()]));
                }
                "nullable" => {} // applied below, once `type` is known
                "items" => match value {
                    Value::Array(tuple) => {
                        if map.contains_key("prefixItems") {
                            return Err(refuse(&at, "both `items` as an array and `prefixItems`"));
                        }
                        out.insert("prefixItems".into(), self.list(tuple, &at)?);
                    }
                    other => {
                        out.insert(key.clone(), Value::Object(self.node(other, &at)?));
                    }
                },
                "prefixItems" | "anyOf" => {
                    let Value::Array(list) = value else {
                        return Err(refuse(&at, format!("`{key}` must be an array of schemas")));
                    };
                    out.insert(key.clone(), self.list(list, &at)?);
                }
                "oneOf" => {
                    let Value::Array(list) = value else {
                        return Err(refuse(&at, "`oneOf` must be an array of schemas"));
                    };
                    if list.len() != 1 && self.strict {
                        return Err(refuse(
                            &at,
                            "Gemini reads `oneOf` as `anyOf` (one or more may match), so it \
                             cannot adhere to it strictly; use `anyOf` if that is meant",
                        ));
                    }
                    if map.contains_key("anyOf") {
                        return Err(refuse(&at, "both `oneOf` and `anyOf`"));
                    }
                    if list.len() != 1 {
                        hints.push("exactly one of the `anyOf` schemas".to_owned());
                    }
                    // Exactly one of one schema is that schema, as is any of one.
                    out.insert("anyOf".into(), self.list(list, &at)?);
                }
                "allOf" => {
                    let Value::Array(list) = value else {
                        return Err(refuse(&at, "`allOf` must be an array of schemas"));
                    };
                    for (n, sub) in list.iter().enumerate() {
                        all_of.push((self.node(sub, &format!("{at}[{n}]"))?, format!("{at}[{n}]")));
                    }
                }
                "properties" => {
                    let Value::Object(properties) = value else {
                        return Err(refuse(&at, "`properties` must be an object of schemas"));
                    };
                    let mut converted = Map::new();
                    for (name, sub) in properties {
                        let sub = self.node(sub, &format!("{at}.{name}"))?;
                        converted.insert(name.clone(), Value::Object(sub));
                    }
                    out.insert(key.clone(), Value::Object(converted));
                }
                "additionalProperties" => {
                    let converted = match value {
                        Value::Bool(allowed) => Value::Bool(*allowed),
                        other => Value::Object(self.node(other, &at)?),
                    };
                    out.insert(key.clone(), converted);
                }
                k if HINTED.contains(&k) && self.strict => {
                    return Err(refuse(
                        &at,
                        format!(
                            "Gemini does not enforce the JSON Schema keyword `{k}`, so it cannot \
                             adhere to it strictly"
                        ),
                    ));
                }
                k if HINTED.contains(&k) => hints.push(format!("{k}: {}", hint_value(value))),
                k if REFUSED.contains(&k) => {
                    return Err(refuse(
                        &at,
                        format!(
                            "Gemini does not honour the JSON Schema keyword `{k}` (it would be \
                             ignored, which changes the schema)"
                        ),
                    ));
                }
                k if DROPPED.contains(&k) => {}
                // `format`, `title`, `description`, `required`, `minItems`, `maxItems`,
                // `minimum`, `maximum`, `propertyOrdering`, annotations and unknown keywords.
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        if map.get("nullable") == Some(&Value::Bool(true)) {
            add_null(&mut out);
        }
        if !hints.is_empty() {
            let description = out.get("description").and_then(Value::as_str);
            let hints = hints.join("; ");
            let described = match description {
                Some(d) if !d.is_empty() => format!("{d} ({hints})"),
                _ => hints,
            };
            out.insert("description".into(), Value::String(described));
        }
        // The subschemas in order, then the schema's own keywords, whose annotations win.
        let mut combined: Option<Map<String, Value>> = None;
        for (sub, at) in all_of {
            combined = Some(match combined {
                None => sub,
                Some(so_far) => merge(so_far, sub, &at)?,
            });
        }
        match combined {
            Some(combined) => merge(combined, out, &format!("{path}.allOf")),
            None => Ok(out),
        }
    }

    fn list(&mut self, list: &[Value], at: &str) -> Result<Value> {
        list.iter()
            .enumerate()
            .map(|(n, sub)| self.node(sub, &format!("{at}[{n}]")).map(Value::Object))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array)
    }
}

/// A constraint's value as the description shows it: a string as it is, anything else as JSON.
fn hint_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `enum` values: Gemini takes strings and numbers only.
fn enum_values(value: &Value, at: &str) -> Result<Value> {
    match value {
        Value::Array(values)
            if values
                .iter()
                .all(|v| matches!(v, Value::String(_) | Value::Number(_))) =>
        {
            Ok(value.clone())
        }
        _ => Err(refuse(
            at,
            "Gemini takes `enum` only as an array of strings and numbers",
        )),
    }
}

/// OpenAPI 3.0's `nullable: true`: `null` is valid too. Without a `type` it changes nothing.
fn add_null(schema: &mut Map<String, Value>) {
    let null = Value::String("null".into());
    match schema.get_mut("type") {
        Some(Value::Array(types)) if !types.contains(&null) => types.push(null),
        Some(single @ Value::String(_)) if *single != null => {
            *single = Value::Array(vec![single.clone(), null]);
        }
        _ => {}
    }
}

/// Both schemas at once (`allOf`, or a `$ref` and its siblings): their keywords together, which
/// is exact as long as no validation keyword appears in both with different values. Exceptions,
/// exact too: `required` lists are joined; `properties` are joined when their names differ and
/// neither schema has `additionalProperties` (which reads its own schema's `properties`). For an
/// annotation in both, `upper`'s wins.
fn merge(
    lower: Map<String, Value>,
    upper: Map<String, Value>,
    at: &str,
) -> Result<Map<String, Value>> {
    let open =
        !lower.contains_key("additionalProperties") && !upper.contains_key("additionalProperties");
    let mut out = lower;
    for (key, value) in upper {
        let merged = match (key.as_str(), out.get(&key), value) {
            (_, None, value) => value,
            (_, Some(existing), value) if *existing == value => value,
            (k, Some(_), value) if ANNOTATIONS.contains(&k) => value,
            ("required", Some(Value::Array(existing)), Value::Array(more)) => {
                let mut all = existing.clone();
                all.extend(more.into_iter().filter(|name| !existing.contains(name)));
                Value::Array(all)
            }
            ("properties", Some(Value::Object(existing)), Value::Object(more)) if open => {
                let mut all = existing.clone();
                for (name, schema) in more {
                    if all.get(&name).is_some_and(|s| *s != schema) {
                        return Err(refuse(
                            at,
                            format!(
                                "property `{name}` is defined differently by the schemas it combines"
                            ),
                        ));
                    }
                    all.insert(name, schema);
                }
                Value::Object(all)
            }
            (k, Some(_), _) => {
                return Err(refuse(
                    at,
                    format!(
                        "`{k}` is set differently by the schemas it combines, which Gemini \
                         cannot express"
                    ),
                ));
            }
        };
        out.insert(key, merged);
    }
    Ok(out)
}

fn refuse(at: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid_request(format!("{at}: {why}"))
        .with_provider(PROVIDER)
        .with_param(at)
}
