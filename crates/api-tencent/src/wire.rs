//! Request parameters off the wire: JSON bodies as they are, form/query parameters unflattened
//! (`Filters.0.Values.1=x` → `{"Filters":[{"Values":[…,"x"]}]}`) so one typed parser serves both.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Rebuild nested parameters from flattened `a.0.b` keys. Numeric segments are list indexes.
pub fn unflatten(pairs: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let segs: Vec<&str> = key.split('.').collect();
        if segs.iter().any(|s| s.is_empty()) {
            return Err(format!("malformed parameter name `{key}`"));
        }
        let mut cur = &mut root;
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let next_is_index = segs
                .get(i + 1)
                .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
            let fresh = || {
                if next_is_index {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                }
            };
            cur = if seg.bytes().all(|b| b.is_ascii_digit()) {
                let idx: usize = seg.parse().map_err(|_| format!("bad index in `{key}`"))?;
                if idx > 1000 {
                    return Err(format!("index too large in `{key}`"));
                }
                let Value::Array(arr) = cur else {
                    return Err(format!("`{key}` mixes a list and an object"));
                };
                while arr.len() <= idx {
                    arr.push(Value::Null);
                }
                let slot = &mut arr[idx];
                if last {
                    *slot = Value::String(value.clone());
                } else if slot.is_null() {
                    *slot = fresh();
                }
                slot
            } else {
                let Value::Object(obj) = cur else {
                    return Err(format!("`{key}` mixes a list and an object"));
                };
                if last {
                    obj.insert(seg.to_string(), Value::String(value.clone()));
                    obj.get_mut(*seg).expect("just inserted")
                } else {
                    obj.entry(seg.to_string()).or_insert_with(fresh)
                }
            };
        }
    }
    match root {
        Value::Object(m) => {
            if m.values().any(has_hole) {
                return Err("list parameters must be numbered from 0 without gaps".into());
            }
            Ok(m)
        }
        _ => unreachable!("root is an object"),
    }
}

fn has_hole(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_hole),
        Value::Object(o) => o.values().any(has_hole),
        _ => false,
    }
}

/// An integer sent as a JSON number or as text (form requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_i64()
                .map(Int)
                .ok_or_else(|| serde::de::Error::custom("expected an integer")),
            Value::String(s) => s
                .trim()
                .parse()
                .map(Int)
                .map_err(|_| serde::de::Error::custom("expected an integer")),
            _ => Err(serde::de::Error::custom("expected an integer")),
        }
    }
}

/// A boolean sent as JSON or as `true/false/True/False/1/0` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bool(pub bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Bool(b)),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(Bool(false)),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(Bool(true)),
            Value::String(s) => match s.as_str() {
                "true" | "True" | "TRUE" | "1" => Ok(Bool(true)),
                "false" | "False" | "FALSE" | "0" => Ok(Bool(false)),
                _ => Err(serde::de::Error::custom("expected a boolean")),
            },
            _ => Err(serde::de::Error::custom("expected a boolean")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn unflattens_lists_and_objects() {
        let m = unflatten(&pairs(&[
            ("InstanceIds.0", "ins-a"),
            ("InstanceIds.1", "ins-b"),
            ("Filters.0.Name", "zone"),
            ("Filters.0.Values.0", "x"),
            ("Filters.0.Values.1", "y"),
            ("Placement.Zone", "ap-guangzhou-3"),
            ("Limit", "20"),
        ]))
        .unwrap();
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"InstanceIds": ["ins-a", "ins-b"], "Filters": [{"Name": "zone", "Values": ["x", "y"]}], "Placement": {"Zone": "ap-guangzhou-3"}, "Limit": "20"})
        );
    }

    #[test]
    fn rejects_gaps_and_mixtures() {
        assert!(unflatten(&pairs(&[("InstanceIds.1", "a")])).is_err());
        assert!(unflatten(&pairs(&[("A.0", "a"), ("A.x", "b")])).is_err());
        assert!(unflatten(&pairs(&[("A..b", "a")])).is_err());
        assert!(unflatten(&pairs(&[("A.99999", "a")])).is_err());
    }

    #[test]
    fn lenient_scalars() {
        assert_eq!(serde_json::from_str::<Int>("\"20\"").unwrap(), Int(20));
        assert_eq!(serde_json::from_str::<Int>("20").unwrap(), Int(20));
        assert!(serde_json::from_str::<Int>("\"x\"").is_err());
        assert_eq!(
            serde_json::from_str::<Bool>("\"True\"").unwrap(),
            Bool(true)
        );
        assert_eq!(serde_json::from_str::<Bool>("false").unwrap(), Bool(false));
        assert!(serde_json::from_str::<Bool>("\"yes\"").is_err());
    }

    proptest! {
        #[test]
        fn unflatten_never_panics(keys in proptest::collection::vec("[A-Za-z0-9.]{0,12}", 0..8)) {
            let p: Vec<(String, String)> = keys.into_iter().map(|k| (k, "v".to_string())).collect();
            let _ = unflatten(&p);
        }
    }
}
