//! `/os-instance_usage_audit_log` (admin): the state of Nova's periodic usage audit per compute
//! host. nubis runs no such task (its usage comes from `os-simple-tenant-usage` and the audit
//! trail), so every period reads as Nova reads one the task has not run for: every compute
//! host not run, nothing counted.

use super::{Nova, Res, hosts};
use crate::Reply;
use crate::errors::Fault;
use serde_json::{Value, json};
use time::{Date, Month, PrimitiveDateTime, Time};

/// Nova's audit periods are months by default (`instance_usage_audit_period = month`): the last
/// whole month before `t`, as (beginning, ending).
fn period_before(t: PrimitiveDateTime) -> (PrimitiveDateTime, PrimitiveDateTime) {
    let first = |y: i32, m: Month| {
        Date::from_calendar_date(y, m, 1)
            .map(|d| PrimitiveDateTime::new(d, Time::MIDNIGHT))
            .unwrap_or(t)
    };
    let end = first(t.year(), t.month());
    let (y, m) = match t.month() {
        Month::January => (t.year() - 1, Month::December),
        m => (t.year(), m.previous()),
    };
    (first(y, m), end)
}

/// The `before` of `GET /os-instance_usage_audit_log/{before}`: Nova's
/// `"%Y-%m-%d %H:%M:%S"`, optionally with `.%f`; anything else is its 400.
fn parse_before(s: &str) -> Result<PrimitiveDateTime, Fault> {
    use time::macros::format_description as fd;
    PrimitiveDateTime::parse(s, fd!("[year]-[month]-[day] [hour]:[minute]:[second]"))
        .or_else(|_| {
            PrimitiveDateTime::parse(
                s,
                fd!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"),
            )
        })
        .map_err(|_| Fault::bad_request(format!("Invalid timestamp for date {s}")))
}

fn stamp(t: PrimitiveDateTime) -> String {
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

fn log_for(before: PrimitiveDateTime) -> Value {
    let (begin, end) = period_before(before);
    let names: Vec<String> = hosts::hosts().iter().map(|h| h.name()).collect();
    let n = names.len();
    json!({
        "hosts_not_run": names,
        "log": {},
        "num_hosts": n,
        "num_hosts_done": 0,
        "num_hosts_not_run": n,
        "num_hosts_running": 0,
        "overall_status": format!("0 of {n} hosts done. 0 errors."),
        "period_beginning": stamp(begin),
        "period_ending": stamp(end),
        "total_errors": 0,
        "total_instances": 0,
    })
}

fn now() -> PrimitiveDateTime {
    let t = time::OffsetDateTime::now_utc();
    PrimitiveDateTime::new(t.date(), t.time())
}

impl Nova<'_> {
    /// `GET /os-instance_usage_audit_log`: the last whole period before now.
    pub(super) fn list_usage_audit_logs(&self) -> Res {
        Ok(Reply::json(
            200,
            &json!({ "instance_usage_audit_logs": log_for(now()) }),
        ))
    }

    /// `GET /os-instance_usage_audit_log/{before}`; the segment comes percent-encoded (the
    /// timestamp has a space and colons).
    pub(super) fn show_usage_audit_log(&self, before: &str) -> Res {
        // The segment as a one-key form: decodes %XX and '+' (no '=' or '&' in a timestamp;
        // anything that has them fails the parse below).
        let decoded = form_urlencoded::parse(before.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        let t = parse_before(&decoded)?;
        Ok(Reply::json(
            200,
            &json!({ "instance_usage_audit_log": log_for(t) }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_the_previous_whole_month() {
        let t = parse_before("2026-01-15 10:00:00").unwrap();
        let (b, e) = period_before(t);
        assert_eq!(
            (stamp(b).as_str(), stamp(e).as_str()),
            ("2025-12-01 00:00:00", "2026-01-01 00:00:00")
        );
        let t = parse_before("2026-03-01 00:00:00.5").unwrap();
        assert_eq!(stamp(period_before(t).0), "2026-02-01 00:00:00");
        assert!(parse_before("2026-13-01 00:00:00").is_err());
        assert!(parse_before("now").is_err());
    }
}
