//! The fixture format's subset match.
//!
//! - Object: every expected key is present in the actual object and matches; extra keys are fine.
//! - Array: same length, element by element.
//! - Number: equal as numbers (`1` matches `1.0`); the string `"~0.000123"` matches a number
//!   within 1% of it.
//! - The string `"<any>"` matches any value that is present (null included).
//! - Anything else: equal.

use serde_json::Value;

/// Every difference between `expected` and `actual`, each as `path: what differed`.
pub fn differences(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("$", expected, actual, &mut out);
    out
}

/// `Ok` if `actual` subset-matches `expected`, else the differences joined by newlines.
pub fn subset_match(expected: &Value, actual: &Value) -> Result<(), String> {
    let diffs = differences(expected, actual);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n"))
    }
}

/// Whether one scalar `actual` (e.g. a header value) matches `expected`.
pub fn scalar_matches(expected: &Value, actual: &str) -> bool {
    match expected {
        Value::String(e) if e == "<any>" => true,
        Value::String(e) => e == actual || approx(e, &Value::String(actual.to_owned())),
        other => actual
            .parse::<Value>()
            .is_ok_and(|a| differences(other, &a).is_empty()),
    }
}

fn walk(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::String(e), _) if e == "<any>" => {}
        (Value::String(e), a) if e.starts_with('~') && a.is_number() => {
            if !approx(e, a) {
                out.push(format!("{path}: expected {e} (within 1%), got {a}"));
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let sub = format!("{path}.{key}");
                match a.get(key) {
                    Some(av) => walk(&sub, ev, av, out),
                    None => out.push(format!("{sub}: missing (expected {})", short(ev))),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: expected {} elements, got {}: {}",
                    e.len(),
                    a.len(),
                    short(actual)
                ));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                walk(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let equal = match (e.as_i64(), a.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => e.as_f64() == a.as_f64(),
            };
            if !equal {
                out.push(format!("{path}: expected {e}, got {a}"));
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(format!("{path}: expected {}, got {}", short(e), short(a))),
    }
}

fn approx(expected: &str, actual: &Value) -> bool {
    let Some(target) = expected
        .strip_prefix('~')
        .and_then(|t| t.parse::<f64>().ok())
    else {
        return false;
    };
    let got = match actual {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    got.is_some_and(|got| (got - target).abs() <= target.abs() * 0.01 + f64::EPSILON)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_rules() {
        let actual =
            json!({"a": 1.0, "b": [1, {"c": null, "d": "x"}], "e": 0.0001231, "extra": true});
        assert_eq!(
            subset_match(
                &json!({"a": 1, "b": [1, {"c": "<any>"}], "e": "~0.000123"}),
                &actual
            ),
            Ok(())
        );
        let diffs = differences(
            &json!({"a": 2, "b": [1], "z": "<any>", "e": "~0.0002"}),
            &actual,
        );
        assert_eq!(diffs.len(), 4, "{diffs:?}");
        assert!(diffs.iter().any(|d| d.starts_with("$.z: missing")));
    }

    #[test]
    fn scalars_for_headers() {
        assert!(scalar_matches(&json!("<any>"), "whatever"));
        assert!(scalar_matches(
            &json!("text/event-stream"),
            "text/event-stream"
        ));
        assert!(scalar_matches(&json!("~0.5"), "0.501"));
        assert!(scalar_matches(&json!(3), "3"));
        assert!(!scalar_matches(&json!("a"), "b"));
    }
}
