//! Bounded parsing before authentication: cheap shape checks every dialect runs on attacker
//! bytes before anything recursive or expensive (unflattening, JSON parsing, signing) starts,
//! plus the constant-time comparison every secret check uses.
//!
//! The checks are pure and linear: no recursion, no allocation proportional to nesting.
//! Each dialect keeps its own numbers (a [`PairLimits`] constant) and turns a [`ShapeError`]
//! into its own error code and envelope.

use subtle::ConstantTimeEq;

/// Constant-time equality of two secrets (passwords, tokens, signatures, API secrets).
/// The time taken depends only on the lengths, never on where the inputs first differ.
/// Lengths are not secret here: a different length answers `false` at once.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Limits on decoded query/form parameters, checked before authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairLimits {
    /// Most parameters one request may carry.
    pub max_pairs: usize,
    /// Longest parameter name, in bytes.
    pub max_name_bytes: usize,
    /// Longest parameter value, in bytes.
    pub max_value_bytes: usize,
    /// Most `.`-separated segments in one (flattened) parameter name.
    pub max_segments: usize,
}

/// Why a request's shape was refused before authentication. `name` fields carry at most
/// [`SHOWN_NAME_CHARS`] characters of the offending name (enough to recognise it, never the
/// whole attacker-sized string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("the request carries more than {max} parameters")]
    TooManyParameters { max: usize },
    #[error("the parameter name `{name}` is longer than {max} bytes")]
    NameTooLong { name: String, max: usize },
    #[error("the parameter name `{name}` has more than {max} `.`-separated parts")]
    TooManySegments { name: String, max: usize },
    #[error("the value of parameter `{name}` is longer than {max} bytes")]
    ValueTooLong { name: String, max: usize },
    #[error("the request body nests deeper than {max} levels")]
    TooDeep { max: usize },
}

/// How many characters of an offending name an error message repeats.
pub const SHOWN_NAME_CHARS: usize = 64;

/// The first [`SHOWN_NAME_CHARS`] characters of `name`, with `…` when cut.
pub fn shown(name: &str) -> String {
    match name.char_indices().nth(SHOWN_NAME_CHARS) {
        Some((at, _)) => format!("{}…", &name[..at]),
        None => name.to_string(),
    }
}

/// Checks every pair against `limits`: count first (before looking at any pair), then each
/// name's length and segment count, then each value's length. Linear in the input.
pub fn check_pairs(pairs: &[(String, String)], limits: &PairLimits) -> Result<(), ShapeError> {
    if pairs.len() > limits.max_pairs {
        return Err(ShapeError::TooManyParameters {
            max: limits.max_pairs,
        });
    }
    for (name, value) in pairs {
        if name.len() > limits.max_name_bytes {
            return Err(ShapeError::NameTooLong {
                name: shown(name),
                max: limits.max_name_bytes,
            });
        }
        // `split` would count every separator; stop as soon as the limit is passed.
        if name.split('.').nth(limits.max_segments).is_some() {
            return Err(ShapeError::TooManySegments {
                name: shown(name),
                max: limits.max_segments,
            });
        }
        if value.len() > limits.max_value_bytes {
            return Err(ShapeError::ValueTooLong {
                name: shown(name),
                max: limits.max_value_bytes,
            });
        }
    }
    Ok(())
}

/// Nesting depth of a JSON text (arrays and objects; strings and escapes skipped), found by
/// one iterative pass so it can run before a recursive parser. Stops counting as soon as
/// `max` is passed: `Err(TooDeep)` then. Malformed JSON is not judged here (the parser that
/// follows refuses it); only its bracket depth is.
pub fn check_json_depth(bytes: &[u8], max: usize) -> Result<(), ShapeError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(ShapeError::TooDeep { max });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const L: PairLimits = PairLimits {
        max_pairs: 10,
        max_name_bytes: 32,
        max_value_bytes: 16,
        max_segments: 4,
    };

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn ct_eq_compares_whole_values() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret!"));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn pairs_within_limits_pass() {
        let ok = vec![p("Filters.0.Values.0", "x"), p("Limit", "0123456789abcdef")];
        assert_eq!(check_pairs(&ok, &L), Ok(()));
        assert_eq!(check_pairs(&[], &L), Ok(()));
    }

    #[test]
    fn each_limit_is_enforced() {
        let many: Vec<_> = (0..11).map(|i| p(&format!("a{i}"), "v")).collect();
        assert_eq!(
            check_pairs(&many, &L),
            Err(ShapeError::TooManyParameters { max: 10 })
        );
        assert!(matches!(
            check_pairs(&[p(&"n".repeat(33), "v")], &L),
            Err(ShapeError::NameTooLong { max: 32, .. })
        ));
        assert!(matches!(
            check_pairs(&[p("a.b.c.d.e", "v")], &L),
            Err(ShapeError::TooManySegments { max: 4, .. })
        ));
        assert_eq!(check_pairs(&[p("a.b.c.d", "v")], &L), Ok(()));
        assert!(matches!(
            check_pairs(&[p("a", &"v".repeat(17))], &L),
            Err(ShapeError::ValueTooLong { max: 16, .. })
        ));
    }

    #[test]
    fn huge_inputs_are_refused_quickly_and_named_briefly() {
        let wide = PairLimits {
            max_pairs: 1000,
            max_name_bytes: 1 << 20,
            max_value_bytes: 65_536,
            max_segments: 8,
        };
        // 20,000 segments: the name of the 40 KB GET that used to overflow the stack.
        let deep = format!("a{}", ".b".repeat(20_000));
        match check_pairs(&[p(&deep, "1")], &wide) {
            Err(ShapeError::TooManySegments { name, max: 8 }) => {
                assert!(name.chars().count() <= SHOWN_NAME_CHARS + 1, "{name}");
            }
            other => panic!("{other:?}"),
        }
        // 100,000 parameters.
        let many: Vec<_> = (0..100_000).map(|i| p(&format!("a{i}"), "v")).collect();
        assert_eq!(
            check_pairs(&many, &wide),
            Err(ShapeError::TooManyParameters { max: 1000 })
        );
        // A 1 MB value.
        assert!(matches!(
            check_pairs(&[p("UserData", &"A".repeat(1 << 20))], &wide),
            Err(ShapeError::ValueTooLong { .. })
        ));
        assert_eq!(
            shown(&"é".repeat(100)).chars().count(),
            SHOWN_NAME_CHARS + 1
        );
    }

    #[test]
    fn json_depth() {
        assert_eq!(check_json_depth(br#"{"a":[{"b":[1]}]}"#, 4), Ok(()));
        assert_eq!(
            check_json_depth(br#"{"a":[{"b":[[1]]}]}"#, 4),
            Err(ShapeError::TooDeep { max: 4 })
        );
        // Brackets inside strings (escaped quotes too) do not count.
        assert_eq!(check_json_depth(br#"{"a":"[[[[\"[[[["}"#, 1), Ok(()));
        assert_eq!(check_json_depth(b"", 0), Ok(()));
        assert_eq!(check_json_depth(b"1", 0), Ok(()));
        // Deep nesting is found without recursion.
        let deep = "[".repeat(1_000_000);
        assert!(check_json_depth(deep.as_bytes(), 16).is_err());
        // Closing brackets cannot drive the depth negative and hide later nesting.
        let tricky = format!("{}{}", "]".repeat(100), "[".repeat(17));
        assert!(check_json_depth(tricky.as_bytes(), 16).is_err());
    }

    proptest! {
        #[test]
        fn json_depth_matches_serde(v in arb_json()) {
            let text = serde_json::to_string(&v).unwrap();
            let depth = depth_of(&v);
            prop_assert_eq!(check_json_depth(text.as_bytes(), depth), Ok(()));
            if depth > 0 {
                prop_assert!(check_json_depth(text.as_bytes(), depth - 1).is_err());
            }
        }

        #[test]
        fn check_pairs_never_panics(
            pairs in proptest::collection::vec(("\\PC{0,40}", "\\PC{0,20}"), 0..20)
        ) {
            let _ = check_pairs(&pairs, &L);
        }
    }

    fn depth_of(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Array(a) => 1 + a.iter().map(depth_of).max().unwrap_or(0),
            serde_json::Value::Object(o) => 1 + o.values().map(depth_of).max().unwrap_or(0),
            _ => 0,
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            "[\\[\\]{}\"\\\\a-z]{0,8}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(6, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map("[\\[{\"a-z]{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
