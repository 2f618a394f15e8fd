//! Request parameters off the wire: JSON bodies as they are, form/query parameters unflattened
//! (`Filters.0.Values.1=x` → `{"Filters":[{"Values":[…,"x"]}]}`) so one typed parser serves both.

use nubis_auth::bounds::{PairLimits, shown};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most `.`-separated parts of one flattened name. The deepest CVM parameter,
/// `TagSpecification.0.Tags.0.Key`, has 5.
pub const MAX_SEGMENTS: usize = 8;
/// Largest list index. No CVM list parameter documents more than 100 entries, so every
/// documented count limit is reached (and answered with its own code by the action) first.
pub const MAX_INDEX: usize = 1000;
/// Deepest JSON body (arrays and objects) accepted; CVM's deepest request body nests 5 levels.
/// Checked by one iterative pass before serde_json (whose own limit is 128) parses it.
pub const MAX_JSON_DEPTH: usize = 16;

/// Request sizes Tencent documents (API 3.0 "request structure"): a GET request at most
/// 32 KB, a POST signed with the legacy HmacSHA1/HmacSHA256 at most 1 MB (TC3 POSTs may
/// carry 10 MB; the listener's own body limit is lower). `RequestSizeLimitExceeded`.
pub const MAX_GET_QUERY_BYTES: usize = 32 * 1024;
pub const MAX_LEGACY_POST_BYTES: usize = 1024 * 1024;

/// Shape limits on query/form parameters, checked before authentication
/// (docs/hostile-input.md). The largest legitimate request (RunInstances with 20 data disks,
/// tags, security groups) has a few hundred parameters, names under 64 bytes and values up to
/// 16 KB (base64 UserData); each limit is at least twice that.
pub const PAIR_LIMITS: PairLimits = PairLimits {
    max_pairs: 1000,
    max_name_bytes: 256,
    max_value_bytes: 64 * 1024,
    max_segments: MAX_SEGMENTS,
};

/// A flattened parameter tree while it is built: list entries by index (no padding, so memory
/// follows the input, not the indexes), holes found when it is turned into JSON.
enum Node {
    Leaf(String),
    List(BTreeMap<usize, Node>),
    Obj(BTreeMap<String, Node>),
}

fn is_index(seg: &str) -> bool {
    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit())
}

/// Rebuild nested parameters from flattened `a.0.b` keys. Numeric segments are list indexes.
///
/// Bounded before anything nests: a name with more than [`MAX_SEGMENTS`] parts or an index
/// above [`MAX_INDEX`] is refused up front, so the tree (and every recursion over it, the
/// drop included) is at most [`MAX_SEGMENTS`] deep. Errors are messages for the dialect's
/// `InvalidParameter`.
pub fn unflatten(pairs: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let mut root: BTreeMap<String, Node> = BTreeMap::new();
    for (key, value) in pairs {
        if key.split('.').nth(MAX_SEGMENTS).is_some() {
            return Err(format!(
                "parameter name `{}` has more than {MAX_SEGMENTS} parts",
                shown(key)
            ));
        }
        let segs: Vec<&str> = key.split('.').collect();
        if segs.iter().any(|s| s.is_empty()) {
            return Err(format!("malformed parameter name `{}`", shown(key)));
        }
        let mixes = || format!("`{}` mixes a list and an object", shown(key));
        let conflict = || format!("`{}` is both a value and a group of parameters", shown(key));
        let Some((first, rest)) = segs.split_first() else {
            return Err(format!("malformed parameter name `{}`", shown(key)));
        };
        if is_index(first) {
            return Err(mixes());
        }
        let fresh = |next: Option<&&str>| match next {
            None => Node::Leaf(String::new()),
            Some(n) if is_index(n) => Node::List(BTreeMap::new()),
            Some(_) => Node::Obj(BTreeMap::new()),
        };
        let mut slot = root
            .entry((*first).to_string())
            .or_insert_with(|| fresh(rest.first()));
        for (i, seg) in rest.iter().enumerate() {
            let next = rest.get(i + 1);
            slot = match slot {
                Node::List(items) if is_index(seg) => {
                    let idx = seg
                        .parse::<usize>()
                        .ok()
                        .filter(|i| *i <= MAX_INDEX)
                        .ok_or_else(|| format!("index too large in `{}`", shown(key)))?;
                    items.entry(idx).or_insert_with(|| fresh(next))
                }
                Node::Obj(fields) if !is_index(seg) => fields
                    .entry((*seg).to_string())
                    .or_insert_with(|| fresh(next)),
                Node::Leaf(_) => return Err(conflict()),
                _ => return Err(mixes()),
            };
        }
        match slot {
            Node::Leaf(v) => *v = value.clone(),
            _ => return Err(conflict()),
        }
    }
    root.into_iter()
        .map(|(k, node)| Ok((k, to_value(node)?)))
        .collect()
}

/// JSON of a built tree; lists must be numbered from 0 without gaps. Recursion is bounded by
/// [`MAX_SEGMENTS`] (checked before the tree was built).
fn to_value(node: Node) -> Result<Value, String> {
    match node {
        Node::Leaf(s) => Ok(Value::String(s)),
        Node::Obj(fields) => fields
            .into_iter()
            .map(|(k, n)| Ok((k, to_value(n)?)))
            .collect::<Result<Map<String, Value>, String>>()
            .map(Value::Object),
        Node::List(items) => {
            if items.keys().enumerate().any(|(i, k)| i != *k) {
                return Err("list parameters must be numbered from 0 without gaps".into());
            }
            items
                .into_values()
                .map(to_value)
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
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

    #[test]
    fn values_and_groups_do_not_mix() {
        assert!(unflatten(&pairs(&[("A", "1"), ("A.B", "2")])).is_err());
        assert!(unflatten(&pairs(&[("A.B", "2"), ("A", "1")])).is_err());
        assert!(unflatten(&pairs(&[("A.0", "1"), ("A.0.B", "2")])).is_err());
        assert!(unflatten(&pairs(&[("0", "1")])).is_err());
        // A repeated name: the last value wins, as before.
        assert_eq!(
            unflatten(&pairs(&[("A", "1"), ("A", "2")])).unwrap()["A"],
            "2"
        );
    }

    /// Regression (issue 10): 20,000 segments overflowed the stack in `unflatten`/`has_hole`
    /// and in dropping the result. Refused up front now, on a 64 KiB stack.
    #[test]
    fn deep_names_are_refused_before_nesting() {
        let r = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| {
                let deep = format!("a{}", ".b".repeat(20_000));
                unflatten(&pairs(&[(deep.as_str(), "1")])).map(|_| ())
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(r.unwrap_err().contains("more than 8 parts"));
        let at_limit = ["a"; MAX_SEGMENTS].join(".");
        assert!(unflatten(&pairs(&[(at_limit.as_str(), "1")])).is_ok());
        let past = ["a"; MAX_SEGMENTS + 1].join(".");
        assert!(unflatten(&pairs(&[(past.as_str(), "1")])).is_err());
    }

    #[test]
    fn indexes_are_bounded_and_do_not_allocate_up_front() {
        let last = format!("A.{MAX_INDEX}");
        let past = format!("A.{}", MAX_INDEX + 1);
        assert!(unflatten(&pairs(&[(last.as_str(), "x")])).is_err()); // a gap, not too large
        assert!(
            unflatten(&pairs(&[(past.as_str(), "x")]))
                .unwrap_err()
                .contains("too large")
        );
        assert!(unflatten(&pairs(&[("A.99999999999999999999999", "x")])).is_err());
        // A full list up to the largest index is fine.
        let full: Vec<(String, String)> = (0..=MAX_INDEX)
            .map(|i| (format!("A.{i}"), i.to_string()))
            .collect();
        assert_eq!(
            unflatten(&full).unwrap()["A"].as_array().unwrap().len(),
            MAX_INDEX + 1
        );
    }

    #[test]
    fn many_pairs_stay_linear() {
        // 100,000 distinct lists of one item each at the largest index: refused (gaps), and
        // without building 100 million padding entries first.
        let many: Vec<(String, String)> = (0..100_000)
            .map(|i| (format!("A{i}.{MAX_INDEX}"), "x".to_string()))
            .collect();
        let started = std::time::Instant::now();
        assert!(unflatten(&many).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any name shape, deep ones included: an answer, never a crash, and every accepted
        /// result is at most MAX_SEGMENTS deep.
        #[test]
        fn unflatten_is_bounded(
            keys in proptest::collection::vec(
                proptest::collection::vec(prop_oneof!["[A-Za-z]{1,3}", "[0-9]{1,2}", Just(String::new())], 1..20),
                0..10,
            )
        ) {
            let p: Vec<(String, String)> =
                keys.into_iter().map(|k| (k.join("."), "v".to_string())).collect();
            if let Ok(m) = unflatten(&p) {
                fn depth(v: &Value) -> usize {
                    match v {
                        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
                        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
                        _ => 0,
                    }
                }
                prop_assert!(depth(&Value::Object(m)) <= MAX_SEGMENTS);
            }
        }

        #[test]
        fn unflatten_never_panics(keys in proptest::collection::vec("[A-Za-z0-9.]{0,12}", 0..8)) {
            let p: Vec<(String, String)> = keys.into_iter().map(|k| (k, "v".to_string())).collect();
            let _ = unflatten(&p);
        }
    }
}
