//! The fleet and operations pages, and the live streams that keep pages current.

use super::*;

/// The fleet page's query: search text, state, sort, page.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FleetQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub sort: String,
    /// Text, parsed leniently: a flattened struct's numbers reach serde as strings.
    #[serde(default)]
    pub page: String,
}

impl FleetQuery {
    /// The query string that reproduces it (links, the live stream).
    pub fn to_query(&self, page: usize) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &self.q)
            .append_pair("state", &self.state)
            .append_pair("sort", &self.sort)
            .append_pair("page", &page.to_string())
            .finish()
    }
}

/// One page of the fleet as the principal sees it.
pub struct FleetPage {
    pub rows: Vec<Instance>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
}

pub(super) fn fleet_page(s: &AppState, p: &Principal, q: &FleetQuery) -> FleetPage {
    use nubis_core::select::{Clause, Selection};
    let needle = q.q.trim().to_ascii_lowercase();
    let needle = if needle.len() > 128 {
        String::new()
    } else {
        needle
    };
    // The state is a clause of the fleet's index; only a search text is checked one by one.
    let mut sel = Selection::default();
    if let Some(st) = InstanceState::parse(&q.state) {
        sel.and(Clause::states([st]));
    }
    let search = |i: &Instance| {
        i.name.to_ascii_lowercase().contains(&needle)
            || i.tencent_id.contains(&needle)
            || i.aliyun_id.contains(&needle)
            || i.uuid.to_string().contains(&needle)
    };
    let rest: Option<&dyn Fn(&Instance) -> bool> = if needle.is_empty() {
        None
    } else {
        Some(&search)
    };
    let page = q.page.parse::<usize>().unwrap_or(1).clamp(1, 100_000);
    let offset = (page - 1) * PAGE_SIZE;
    let (total, rows) = match q.sort.as_str() {
        // Newest first read from the other end: the page that ends `offset` before the last.
        "oldest" => {
            let (total, _) = s.engine.select(p, &sel, rest, 0, 0);
            let take = PAGE_SIZE.min(total.saturating_sub(offset));
            let from = total.saturating_sub(offset + take);
            let (_, mut rows) = s.engine.select(p, &sel, rest, from, take);
            rows.reverse();
            (total, rows)
        }
        "name" | "state" => {
            let (total, mut all) = s.engine.select(p, &sel, rest, 0, MAX_SORTED);
            if q.sort == "name" {
                all.sort_by(|a, b| a.name.cmp(&b.name));
            } else {
                all.sort_by(|a, b| a.state.as_str().cmp(b.state.as_str()));
            }
            let rows = all.into_iter().skip(offset).take(PAGE_SIZE).collect();
            (total.min(MAX_SORTED), rows)
        }
        _ => s.engine.select(p, &sel, rest, offset, PAGE_SIZE),
    };
    FleetPage {
        rows,
        total,
        page,
        pages: total.div_ceil(PAGE_SIZE).max(1),
    }
}

pub(super) async fn fleet(
    State(s): State<AppState>,
    Page(who): Page,
    Query(q): Query<FleetQuery>,
) -> Response {
    let page = if who.read_denied.is_some() {
        FleetPage {
            rows: Vec::new(),
            total: 0,
            page: 1,
            pages: 1,
        }
    } else {
        fleet_page(&s, &who.principal, &q)
    };
    html(pages::fleet(&who, &q, &page))
}

pub(super) async fn operations(State(s): State<AppState>, Page(who): Page) -> Response {
    let (_, mut recent) = if who.read_denied.is_some() {
        (0, Vec::new())
    } else {
        s.engine
            .query(&who.principal, |i| i.latest_op.is_some(), 0, MAX_SORTED)
    };
    recent.sort_by_key(|i| std::cmp::Reverse(i.updated_at_ms));
    recent.truncate(100);
    html(pages::operations(&who, &recent))
}

/// What a live stream renders: the fleet's rows, or an instance's panel.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Live {
    #[serde(default)]
    view: String,
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(flatten)]
    fleet: FleetQuery,
}

pub(super) async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(live): Query<Live>,
) -> Response {
    let who = match who(&s, &headers, false).await {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    if STREAMS.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        STREAMS.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live streams\n").into_response();
    }
    let state = Stream {
        s,
        headers,
        live,
        who,
        last: String::new(),
        seen: None,
        tick: 0,
        _slot: Slot,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.tick > 0 {
                tokio::time::sleep(LIVE_TICK).await;
            }
            st.tick += 1;
            // The session is checked again every few seconds: a revoked token or a deleted
            // key ends the stream.
            if st.tick % 5 == 0 {
                st.who = who_again(&st.s, &st.headers).await?;
            }
            if st.who.session.expires_ms <= now_ms() {
                return None;
            }
            let html = match (st.live.view.as_str(), st.live.id) {
                ("health", _) if st.who.principal.is_admin => health_panel(&st.s).into_string(),
                ("health", _) => return None,
                ("instance", Some(id)) => {
                    let inst = visible(&st.s, &st.who, id)?;
                    // The store is read (operations, audit events) only when the instance
                    // changed, and every few ticks for events that do not change it (reads).
                    let seen = (inst.generation, inst.updated_at_ms, inst.latest_op.clone());
                    if st.seen.as_ref() == Some(&seen) && st.tick % 5 != 0 {
                        continue;
                    }
                    st.seen = Some(seen);
                    let d = details(&st.s, &st.who, &inst).await;
                    pages::panel(&st.who, &inst, &d).into_string()
                }
                _ => {
                    pages::rows(&fleet_page(&st.s, &st.who.principal, &st.live.fleet)).into_string()
                }
            };
            if html != st.last {
                st.last.clone_from(&html);
                let ev = Event::default().event("fragment").data(html);
                return Some((Ok::<_, std::convert::Infallible>(ev), st));
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// An open stream's slot among [`MAX_STREAMS`], given back when the stream ends.
pub(super) struct Slot;

impl Drop for Slot {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often a live stream looks for changes.
pub(super) const LIVE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// A live stream's state between its fragments.
pub(super) struct Stream {
    s: AppState,
    headers: HeaderMap,
    live: Live,
    who: Who,
    /// The fragment last sent.
    last: String,
    /// The instance view's record as last rendered (generation, change time, operation).
    seen: Option<(u64, i64, Option<nubis_core::LatestOp>)>,
    tick: u32,
    _slot: Slot,
}

pub(super) async fn who_again(s: &AppState, headers: &HeaderMap) -> Option<Who> {
    who(s, headers, false).await.ok()
}
