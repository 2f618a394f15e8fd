//! The console's health page: this node's own metrics, sampled every few seconds from the
//! Prometheus registry the `/metrics` endpoint serves (so the page and a scraper see the same
//! numbers), kept for the last ten minutes, drawn as SVG on the server (no chart library).

use super::*;
use metrics_exporter_prometheus::PrometheusHandle;
use nubis_engine::Engine;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// How often a sample is taken, and how many are kept (ten minutes).
pub const INTERVAL: Duration = Duration::from_secs(5);
const KEEP: usize = 120;

/// The totals one scrape reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub requests: f64,
    /// Requests whose code is an error (not `OK`, not a 1xx-3xx status).
    pub errors: f64,
    /// The request latency histogram summed over every label: (upper bound s, count).
    pub buckets: Vec<(f64, f64)>,
    /// Operations finished, by the runner.
    pub operations: f64,
}

/// One point of the charts: rates over the interval before it.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at_ms: i64,
    pub requests_per_s: f64,
    pub errors_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub operations_per_s: f64,
    pub running: f64,
}

#[derive(Default)]
pub struct History {
    last: Option<(i64, Totals)>,
    pub samples: VecDeque<Sample>,
}

/// Reads the totals out of the Prometheus text (`nubis_requests_total`,
/// `nubis_request_duration_seconds_bucket`, `nubis_operations_total`).
pub fn totals(text: &str) -> Totals {
    let mut t = Totals::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        match name {
            "nubis_requests_total" => {
                t.requests += v;
                let code = label(labels, "code").unwrap_or("");
                let ok = code == "OK" || code.starts_with(['1', '2', '3']);
                if !ok {
                    t.errors += v;
                }
            }
            "nubis_request_duration_seconds_bucket" => {
                let le = match label(labels, "le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(x) => x.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                match t.buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, n)) => *n += v,
                    None => t.buckets.push((le, v)),
                }
            }
            "nubis_operations_total" => t.operations += v,
            _ => {}
        }
    }
    t.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    t
}

fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels
        .trim_end_matches('}')
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The latency below which `q` of the interval's requests finished (the bucket's upper
/// bound, in ms; 0 when there were none).
fn quantile(now: &[(f64, f64)], before: &[(f64, f64)], q: f64) -> f64 {
    let delta: Vec<(f64, f64)> = now
        .iter()
        .map(|(le, n)| {
            let was = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, (n - was).max(0.0))
        })
        .collect();
    let total = delta.last().map_or(0.0, |(_, n)| *n);
    if total <= 0.0 {
        return 0.0;
    }
    let want = total * q;
    delta
        .iter()
        .find(|(_, n)| *n >= want)
        .map_or(
            0.0,
            |(le, _)| if le.is_finite() { le * 1000.0 } else { 1000.0 },
        )
}

impl History {
    /// Adds the sample of `t` taken at `now_ms`.
    pub fn add(&mut self, now_ms: i64, t: Totals, running: f64) {
        if let Some((then, before)) = &self.last {
            let secs = ((now_ms - then) as f64 / 1000.0).max(0.001);
            let rate = |a: f64, b: f64| ((a - b) / secs).max(0.0);
            self.samples.push_back(Sample {
                at_ms: now_ms,
                requests_per_s: rate(t.requests, before.requests),
                errors_per_s: rate(t.errors, before.errors),
                p50_ms: quantile(&t.buckets, &before.buckets, 0.5),
                p99_ms: quantile(&t.buckets, &before.buckets, 0.99),
                operations_per_s: rate(t.operations, before.operations),
                running,
            });
            while self.samples.len() > KEEP {
                self.samples.pop_front();
            }
        }
        self.last = Some((now_ms, t));
    }
}

/// This node's history, sampled by a task started with the console's routes.
pub fn history() -> &'static Arc<Mutex<History>> {
    static H: std::sync::OnceLock<Arc<Mutex<History>>> = std::sync::OnceLock::new();
    H.get_or_init(Default::default)
}

/// Starts the sampler (once per process).
pub fn start(prometheus: PrometheusHandle, engine: Engine) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(INTERVAL);
            loop {
                tick.tick().await;
                let t = totals(&prometheus.render());
                let running = engine.running_operations() as f64;
                history().lock().add(super::now_ms(), t, running);
            }
        });
    });
}

/// An SVG line chart of `series` (name, CSS class, values) over the samples' times.
pub fn chart(title: &str, unit: &str, series: &[(&str, &str, Vec<f64>)]) -> maud::Markup {
    const W: f64 = 560.0;
    const H: f64 = 160.0;
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0);
    let top = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let x = |i: usize| {
        if n <= 1 {
            0.0
        } else {
            i as f64 * W / (n - 1) as f64
        }
    };
    let y = |v: f64| H - (v / top) * (H - 10.0);
    maud::html! {
        figure.chart {
            figcaption { (title) " (" (unit) ") — now: "
                @for (name, _, vals) in series { (name) " " (format!("{:.1}", vals.last().copied().unwrap_or(0.0))) " " } }
            svg viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) role="img" aria-label=(title) {
                line.axis x1="0" y1=(H) x2=(W) y2=(H) {}
                @for (_, class, vals) in series {
                    polyline class=(class) points=(vals.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v))).collect::<Vec<_>>().join(" ")) {}
                }
                text x="4" y="12" { (format!("{top:.1}")) }
            }
        }
    }
}

// ---- the page

/// The health page's charts and the fleet's state counts (whole node: admins only).
pub(super) fn health_panel(s: &AppState) -> maud::Markup {
    let samples: Vec<health::Sample> = health::history().lock().samples.iter().cloned().collect();
    let col = |f: fn(&health::Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
    let mut states: Vec<(String, usize)> = s
        .engine
        .state_counts()
        .into_iter()
        .map(|(st, n)| (nubis_api_tencent::render::state(st).to_string(), n))
        .collect();
    states.sort();
    pages::health_panel(
        &[
            health::chart(
                "Requests",
                "per second",
                &[
                    ("all", "s1", col(|x| x.requests_per_s)),
                    ("errors", "s2", col(|x| x.errors_per_s)),
                ],
            ),
            health::chart(
                "Latency",
                "ms",
                &[
                    ("p50", "s1", col(|x| x.p50_ms)),
                    ("p99", "s2", col(|x| x.p99_ms)),
                ],
            ),
            health::chart(
                "Operations",
                "finished per second, running",
                &[
                    ("finished", "s1", col(|x| x.operations_per_s)),
                    ("running", "s2", col(|x| x.running)),
                ],
            ),
        ],
        &states,
        samples.len(),
        samples.first().map(|x| x.at_ms),
    )
}

pub(super) async fn health_page(State(s): State<AppState>, Page(who): Page) -> Response {
    if !who.principal.is_admin {
        let page = pages::message(
            &who,
            "Forbidden",
            "The health page shows the whole node: admins only.",
        );
        return (StatusCode::FORBIDDEN, html(page)).into_response();
    }
    html(pages::health(&who, health_panel(&s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE nubis_requests_total counter
nubis_requests_total{dialect="tencent",action="RebootInstances",code="OK"} 10
nubis_requests_total{dialect="tencent",action="RebootInstances",code="UnsupportedOperation.InstanceStateStopped"} 2
nubis_requests_total{dialect="openstack",action="server.create",code="202"} 3
nubis_requests_total{dialect="openstack",action="server.show",code="404"} 1
nubis_request_duration_seconds_bucket{dialect="tencent",action="x",le="0.001"} 8
nubis_request_duration_seconds_bucket{dialect="tencent",action="x",le="0.01"} 15
nubis_request_duration_seconds_bucket{dialect="tencent",action="x",le="+Inf"} 16
nubis_request_duration_seconds_bucket{dialect="openstack",action="y",le="0.001"} 0
nubis_request_duration_seconds_bucket{dialect="openstack",action="y",le="0.01"} 0
nubis_request_duration_seconds_bucket{dialect="openstack",action="y",le="+Inf"} 0
nubis_operations_total{action="reboot",state="SUCCESS"} 7
garbage line
nubis_requests_total{code="OK"} not-a-number
"#;

    #[test]
    fn totals_and_rates_come_from_the_prometheus_text() {
        let t = totals(TEXT);
        assert_eq!((t.requests, t.errors, t.operations), (16.0, 3.0, 7.0));
        assert_eq!(
            t.buckets,
            vec![(0.001, 8.0), (0.01, 15.0), (f64::INFINITY, 16.0)]
        );
        let mut h = History::default();
        h.add(0, Totals::default(), 0.0);
        h.add(2_000, t, 4.0);
        let s = h.samples.back().unwrap();
        assert_eq!(
            (
                s.requests_per_s,
                s.errors_per_s,
                s.operations_per_s,
                s.running
            ),
            (8.0, 1.5, 3.5, 4.0)
        );
        // Half of the 16 finished within 1 ms; the 99th percentile is past the last bound.
        assert_eq!((s.p50_ms, s.p99_ms), (1.0, 1000.0));
        for i in 0..200 {
            h.add(4_000 + i * 1000, totals(TEXT), 0.0);
        }
        assert_eq!(h.samples.len(), KEEP);
        assert_eq!(h.samples.back().unwrap().requests_per_s, 0.0);
    }
}
