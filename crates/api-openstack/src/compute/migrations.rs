//! `GET /os-migrations` (admin): Nova's migration records. Every resize is one, whichever
//! dialect asked for it (Tencent ResetInstancesType and Alibaba ModifyInstanceSpec too); its
//! number, status and times come from the engine (`Engine::migrations`, docs/resize.md).
//! A resize stays on its compute host, so source and destination are the same host.

use super::hosts::host_of_zone;
use super::servers::{parse_isotime, query_fault};
use super::{Nova, Res, int_param, listing, param, region, skip_past};
use crate::errors::{Fault, map};
use crate::{Reply, ids, render};
use nubis_engine::admin::Migration;
use serde_json::{Value, json};
use uuid::Uuid;

/// How many of the newest migrations a listing looks through, filters and pages included
/// (Nova's `max_limit`, the most one page shows).
pub(crate) const MIGRATION_WINDOW: usize = 1000;

/// The filters every microversion takes (`list_query_schema_v20`).
const FILTERS: &[&str] = &[
    "hidden",
    "host",
    "instance_uuid",
    "source_compute",
    "status",
    "migration_type",
];

/// What the ops network address of every compute host is (as os-hypervisors' `host_ip`).
const HOST_IP: &str = "127.0.0.1";

impl Nova<'_> {
    /// Query keys this microversion takes: before 2.59 any (Nova's schema allowed additional
    /// properties and ignored them); from 2.59 only its own.
    fn migration_query_keys(&self, q: &[(String, String)]) -> Result<(), Fault> {
        if !self.v.at_least(59) {
            return Ok(());
        }
        let mut allowed: Vec<&str> = FILTERS.to_vec();
        allowed.extend(["limit", "marker", "changes-since"]);
        if self.v.at_least(66) {
            allowed.push("changes-before");
        }
        if self.v.at_least(80) {
            allowed.extend(["user_id", "project_id"]);
        }
        match q.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(Fault::bad_request(format!(
                "Invalid input for query parameters {k}. Value: {k}. Additional properties are not allowed ('{k}' was unexpected)"
            ))),
            None => Ok(()),
        }
    }

    fn migration_view(&self, m: &Migration) -> Value {
        let op = &m.resize;
        let host = m
            .instance
            .as_ref()
            .map(|i| i.host.clone().unwrap_or_else(|| host_of_zone(&i.zone)));
        let mut v = json!({
            "id": m.number,
            "status": m.status.as_str(),
            "instance_uuid": op.instance,
            "source_node": host,
            "source_compute": host,
            "dest_node": host,
            "dest_compute": host,
            "dest_host": host.as_ref().map(|_| HOST_IP),
            // Nova's internal flavor row IDs, which no API names; nubis has none.
            "old_instance_type_id": null,
            "new_instance_type_id": null,
            "created_at": render::iso_micro(op.created_at_ms),
            "updated_at": m.updated_at_ms.map(render::iso_micro),
        });
        if self.v.at_least(23) {
            // Links are for live migrations in progress only.
            v["migration_type"] = json!("resize");
        }
        if self.v.at_least(59) {
            v["uuid"] = json!(op.id);
        }
        if self.v.at_least(80) {
            v["user_id"] = json!(
                op.user_id
                    .clone()
                    .unwrap_or_else(|| ids::user_id(&op.account))
            );
            v["project_id"] = json!(
                op.project_id
                    .clone()
                    .unwrap_or_else(|| ids::project_id(&op.account))
            );
        }
        v
    }

    /// `GET /os-migrations`: newest first; filters `host`, `source_compute`, `status`,
    /// `instance_uuid`, `migration_type`; from 2.59 `limit`, `marker` (a migration's uuid)
    /// and `changes-since`, from 2.66 `changes-before`, from 2.80 `user_id` and `project_id`.
    pub(super) async fn list_migrations(&self) -> Res {
        let q = self.req.query();
        self.migration_query_keys(&q)?;
        let instance = match param(&q, "instance_uuid") {
            // Not a server's ID: no migration is of it.
            Some(s) => match Uuid::parse_str(s) {
                Ok(id) => Some(id),
                Err(_) => return Ok(Reply::json(200, &json!({ "migrations": [] }))),
            },
            None => None,
        };
        // No record is hidden (Nova hides the records of cross-cell moves).
        if param(&q, "hidden").is_some_and(|h| matches!(h, "1" | "true" | "True" | "yes" | "on")) {
            return Ok(Reply::json(200, &json!({ "migrations": [] })));
        }
        let paged = self.v.at_least(59);
        let time = |key: &str| -> Result<Option<i64>, Fault> {
            param(&q, key)
                .map(|t| parse_isotime(t).ok_or_else(|| query_fault(key, t, "date-time")))
                .transpose()
        };
        let since = if paged { time("changes-since")? } else { None };
        let before = if self.v.at_least(66) {
            time("changes-before")?
        } else {
            None
        };
        if let (Some(s), Some(b)) = (since, before)
            && b < s
        {
            return Err(Fault::bad_request(
                "The value of changes-since must be less than or equal to changes-before.",
            ));
        }
        // Before 2.59 Nova ignores paging parameters.
        let limit = match paged {
            true => int_param(&q, "limit")?
                .map(|n| {
                    usize::try_from(n)
                        .map_err(|_| query_fault("limit", &n.to_string(), "non-negative integer"))
                })
                .transpose()?,
            false => None,
        };
        let list = self
            .api
            .engine
            .migrations(&self.p, instance, MIGRATION_WINDOW)
            .await
            .map_err(|e| map(e, None))?;
        let host_filter = |key: &str| param(&q, key).filter(|h| !h.is_empty());
        let (host, source) = (host_filter("host"), host_filter("source_compute"));
        let status = param(&q, "status");
        let kind = param(&q, "migration_type");
        let (user, project) = match self.v.at_least(80) {
            true => (param(&q, "user_id"), param(&q, "project_id")),
            false => (None, None),
        };
        // Each record's view, built once: the filters read its fields as shown.
        let mut list: Vec<(Migration, Value)> = list
            .into_iter()
            .map(|m| {
                let v = self.migration_view(&m);
                (m, v)
            })
            .collect();
        list.retain(|(m, v)| {
            let at = m.updated_at_ms.unwrap_or(m.resize.created_at_ms);
            let on = |h: &str| v["source_compute"] == h || v["dest_compute"] == h;
            m.instance.as_ref().is_none_or(|i| i.region == region().id)
                && host.is_none_or(on)
                && source.is_none_or(|h| v["source_compute"] == h)
                && status.is_none_or(|s| s == m.status.as_str())
                && kind.is_none_or(|k| k == "resize")
                && since.is_none_or(|t| at >= t)
                && before.is_none_or(|t| at <= t)
                && user.is_none_or(|u| v["user_id"] == u)
                && project.is_none_or(|p| v["project_id"] == p)
        });
        if paged
            && let Some(marker) = param(&q, "marker")
            && !skip_past(&mut list, |(m, _)| m.resize.id.to_string() == marker)
        {
            return Err(Fault::bad_request(format!(
                "Marker {marker} could not be found."
            )));
        }
        let (list, mut items): (Vec<Migration>, Vec<Value>) = list.into_iter().unzip();
        if !paged {
            return Ok(Reply::json(200, &json!({ "migrations": items })));
        }
        // Nova's collection links: a page as long as the limit (default and most: max_limit)
        // links to the next one, after its last item.
        let limit = limit.unwrap_or(MIGRATION_WINDOW).min(MIGRATION_WINDOW);
        items.truncate(limit);
        let next = match limit {
            0 => None,
            _ if items.len() < limit => None,
            _ => list.get(limit - 1).map(|m| m.resize.id.to_string()),
        };
        listing(
            &self.base,
            "migrations",
            "os-migrations",
            items,
            limit,
            next,
        )
    }
}
