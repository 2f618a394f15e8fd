//! A dialect's table of documented limits, walked at every row's boundaries.

use nubis_core::limits::{self, Constraint, Rule, Violation};

/// Every row of `rows` at its boundaries (core's `boundary_cases`: min−1, min, max, max+1 and a
/// control character; a count at its maximum and one over): each value is accepted or refused
/// as expected, and every refusal, in the dialect's words (`refuse` gives its code), carries
/// one of the row's codes. `fill` is a character valid anywhere in a row's text.
pub fn every_row_at_its_boundaries<'a>(
    rows: impl IntoIterator<Item = &'a Constraint>,
    fill: impl Fn(&Constraint) -> &'static str,
    refuse: impl Fn(&Constraint, Violation) -> String,
) {
    for c in rows {
        if let Rule::Count { max } = c.rule {
            assert!(limits::check_count(c, max).is_ok(), "{}", c.param);
            let e = limits::check_count(c, max + 1).unwrap_err();
            assert_eq!(refuse(c, e), c.code, "{}", c.param);
            continue;
        }
        let cases = limits::boundary_cases(c, fill(c));
        assert!(!cases.is_empty(), "{}", c.param);
        for (value, ok) in cases {
            let got = match c.rule {
                Rule::Text { .. } => limits::check_text(c, &value),
                _ => limits::check_int_str(c, &value).map(|_| ()),
            };
            assert_eq!(got.is_ok(), ok, "{} = {value:?}: {got:?}", c.param);
            if let Err(v) = got {
                let code = refuse(c, v);
                assert!(
                    [Some(c.code), c.code_high, c.code_low].contains(&Some(code.as_str())),
                    "{} = {value:?}: {code}",
                    c.param
                );
            }
        }
    }
}

/// A row of base64 text of at most `bytes` decoded bytes (UserData): the largest such value
/// is accepted, one group of four characters more is refused with `too_long`, and each of
/// `refused` with its code (codes as `refuse` gives them).
pub fn base64_row(
    c: &Constraint,
    bytes: usize,
    refuse: impl Fn(&Constraint, Violation) -> String,
    too_long: &str,
    refused: &[(&str, &str)],
) {
    let full = format!("{}==", "A".repeat(limits::base64_len(bytes) - 2));
    assert!(limits::check_text(c, &full).is_ok(), "{}", c.param);
    let code = |v: &str| refuse(c, limits::check_text(c, v).unwrap_err());
    assert_eq!(code(&format!("{full}AAAA")), too_long, "{}", c.param);
    for (value, want) in refused {
        assert_eq!(code(value), *want, "{} = {value:?}", c.param);
    }
}
