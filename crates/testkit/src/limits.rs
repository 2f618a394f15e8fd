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
    // core's table test checks what fits; here each refusal is rendered by the dialect.
    for p in limits::check_table(rows, fill) {
        let (c, Err(v)) = (p.row, p.got) else {
            continue;
        };
        let code = refuse(c, v);
        let allowed = match c.rule {
            Rule::Count { .. } => vec![Some(c.code)],
            _ => vec![Some(c.code), c.code_high, c.code_low],
        };
        assert!(
            allowed.contains(&Some(code.as_str())),
            "{} = {:?}: {code}",
            c.param,
            p.value
        );
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
