//! Prometheus metrics: what this process's workers and HTTP layer counted, plus the
//! queue depth read from the database at scrape time, in the text exposition format
//! (version 0.0.4). Written here rather than with a metrics crate: a few counters and
//! histograms under one mutex, and an encoder of a few dozen lines.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use engram_core::queue::{DEPTH_STATES, Job, KINDS, QueueDepth};
use engram_core::time::Micros;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds in seconds, shared by every histogram: from a fast HTTP answer to a
/// job that waited minutes behind a backlog.
const BUCKETS: [f64; 15] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Clone, Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let seconds = d.as_secs_f64();
        let at = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[at] += 1;
        self.sum += seconds;
    }
}

/// How a job attempt ended, once the store recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Completed,
    /// Failed; it runs again after its backoff.
    Retried,
    /// Failed its last attempt.
    DeadLettered,
    /// Handed back at shutdown.
    Released,
}

#[derive(Clone, Default)]
struct JobStats {
    completed: u64,
    retried: u64,
    dead_lettered: u64,
    released: u64,
    duration: Histogram,
    wait: Histogram,
}

/// Reads one statistic of a kind's jobs.
type Field<T> = fn(&JobStats) -> T;

#[derive(Default)]
struct Inner {
    jobs: BTreeMap<String, JobStats>,
    /// Responses by status class (the hundreds digit).
    responses: BTreeMap<u16, u64>,
    latency: Histogram,
}

/// This process's counters; shared by the HTTP layer, the workers and the scrape.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding the lock leaves plain numbers behind, still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inner)
    }

    /// A job was just claimed (at `now`): a first attempt records how long it waited
    /// in the queue. Later attempts do not: a takeover's wait includes the lease of the
    /// worker that lost it.
    pub fn job_claimed(&self, job: &Job, now: Micros) {
        if job.attempts != 1 {
            return;
        }
        let waited = Duration::from_micros(now.saturating_sub(job.run_at).max(0) as u64);
        self.with(|m| {
            m.jobs
                .entry(job.kind.clone())
                .or_default()
                .wait
                .observe(waited)
        });
    }

    /// An attempt of a `kind` job ended `elapsed` after its claim.
    pub fn job_finished(&self, kind: &str, how: Finished, elapsed: Duration) {
        self.with(|m| {
            let stats = m.jobs.entry(kind.to_string()).or_default();
            match how {
                Finished::Completed => {
                    stats.completed += 1;
                    stats.duration.observe(elapsed);
                }
                Finished::Retried => stats.retried += 1,
                Finished::DeadLettered => stats.dead_lettered += 1,
                Finished::Released => stats.released += 1,
            }
        });
    }

    fn http_response(&self, status: u16, elapsed: Duration) {
        self.with(|m| {
            *m.responses.entry(status / 100).or_default() += 1;
            m.latency.observe(elapsed);
        });
    }

    /// The exposition: every known job kind and state appears, at zero if need be,
    /// so a series never vanishes when its work is done.
    pub fn render(&self, depth: &[QueueDepth]) -> String {
        let (jobs, responses, latency) = self.with(|m| {
            let mut jobs = m.jobs.clone();
            for kind in KINDS {
                jobs.entry(kind.to_string()).or_default();
            }
            let mut responses = m.responses.clone();
            for class in 1..=5 {
                responses.entry(class).or_default();
            }
            (jobs, responses, m.latency.clone())
        });
        let mut depths: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for kind in jobs.keys() {
            for state in DEPTH_STATES {
                depths.insert((kind, state), 0);
            }
        }
        for d in depth {
            depths.insert((&d.kind, &d.state), d.jobs);
        }

        let mut out = Text::default();
        out.family(
            "engram_queue_jobs",
            "gauge",
            "Jobs in the queue by kind and state (failed: dead-lettered), read from the database: the same for every process sharing it.",
        );
        for ((kind, state), n) in &depths {
            out.sample(
                "engram_queue_jobs",
                &[("kind", kind), ("state", state)],
                *n as f64,
            );
        }
        let counters: [(&str, &str, Field<u64>); 4] = [
            (
                "engram_jobs_completed_total",
                "Jobs this process's workers completed.",
                |s| s.completed,
            ),
            (
                "engram_job_retries_total",
                "Failed job attempts this process's workers scheduled to run again.",
                |s| s.retried,
            ),
            (
                "engram_jobs_dead_lettered_total",
                "Jobs this process's workers gave up on after their last attempt.",
                |s| s.dead_lettered,
            ),
            (
                "engram_jobs_released_total",
                "Jobs this process's workers handed back unfinished at shutdown.",
                |s| s.released,
            ),
        ];
        for (name, help, value) in counters {
            out.family(name, "counter", help);
            for (kind, stats) in &jobs {
                out.sample(name, &[("kind", kind)], value(stats) as f64);
            }
        }
        let histograms: [(&str, &str, Field<Histogram>); 2] = [
            (
                "engram_job_duration_seconds",
                "Time from claim to completion of the jobs this process's workers completed.",
                |s| s.duration.clone(),
            ),
            (
                "engram_job_queue_wait_seconds",
                "Time from enqueue (or an operator's re-queue) to first claim, for the jobs this process's workers claimed.",
                |s| s.wait.clone(),
            ),
        ];
        for (name, help, value) in histograms {
            out.family(name, "histogram", help);
            for (kind, stats) in &jobs {
                out.histogram(name, &[("kind", kind)], &value(stats));
            }
        }
        out.family(
            "engram_http_requests_total",
            "counter",
            "HTTP responses of this process by status class.",
        );
        for (class, n) in &responses {
            let class = format!("{class}xx");
            out.sample(
                "engram_http_requests_total",
                &[("class", &class)],
                *n as f64,
            );
        }
        out.family(
            "engram_http_request_duration_seconds",
            "histogram",
            "Time from request to response headers, every route.",
        );
        out.histogram("engram_http_request_duration_seconds", &[], &latency);
        out.text
    }
}

/// The layer counting every HTTP response by status class, with its latency.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.http_response(response.status().as_u16(), started.elapsed());
    response
}

/// The text exposition format: `# HELP` and `# TYPE` once per family, then one
/// `name{labels} value` line per sample.
#[derive(Default)]
struct Text {
    text: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', r"\\").replace('\n', r"\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let v = v
                    .replace('\\', r"\\")
                    .replace('"', "\\\"")
                    .replace('\n', r"\n");
                let _ = write!(self.text, "{label}=\"{v}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    /// Cumulative `_bucket` lines up to `+Inf`, then `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, n) in h.counts.iter().enumerate() {
            cumulative += n;
            let le = BUCKETS.get(i).map_or(f64::INFINITY, |b| *b);
            let le = number(le);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, cumulative as f64);
        }
        self.sample(&format!("{name}_sum"), labels, h.sum);
        self.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

/// A sample value as Prometheus reads it (`+Inf`, `NaN`, Go-style floats).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_special_values_spelled() {
        let mut t = Text::default();
        t.family("x_total", "counter", "Back\\slash\nand newline.");
        t.sample("x_total", &[("kind", "a\"b\\c\nd"), ("k2", "v")], 3.0);
        t.sample("x_total", &[], f64::INFINITY);
        t.sample("x_total", &[], 0.25);
        assert_eq!(
            t.text,
            "# HELP x_total Back\\\\slash\\nand newline.\n# TYPE x_total counter\n\
             x_total{kind=\"a\\\"b\\\\c\\nd\",k2=\"v\"} 3\nx_total +Inf\nx_total 0.25\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(250));
        h.observe(Duration::from_millis(250));
        h.observe(Duration::from_secs(1000));
        let mut t = Text::default();
        t.histogram("d_seconds", &[("kind", "k")], &h);
        let lines: Vec<&str> = t.text.lines().collect();
        assert_eq!(lines[0], "d_seconds_bucket{kind=\"k\",le=\"0.001\"} 0");
        assert_eq!(lines[5], "d_seconds_bucket{kind=\"k\",le=\"0.1\"} 0");
        assert_eq!(lines[6], "d_seconds_bucket{kind=\"k\",le=\"0.25\"} 2");
        assert_eq!(lines[14], "d_seconds_bucket{kind=\"k\",le=\"300\"} 2");
        assert_eq!(lines[15], "d_seconds_bucket{kind=\"k\",le=\"+Inf\"} 3");
        assert_eq!(lines[16], "d_seconds_sum{kind=\"k\"} 1000.5");
        assert_eq!(lines[17], "d_seconds_count{kind=\"k\"} 3");
    }

    #[test]
    fn every_kind_appears_and_depth_fills_in() {
        let m = Metrics::default();
        m.job_finished(
            "purge_session",
            Finished::Completed,
            Duration::from_millis(2),
        );
        m.job_finished("custom", Finished::DeadLettered, Duration::ZERO);
        let text = m.render(&[QueueDepth {
            kind: "purge_session".into(),
            state: "pending".into(),
            jobs: 4,
        }]);
        for line in [
            "engram_queue_jobs{kind=\"purge_session\",state=\"pending\"} 4",
            "engram_queue_jobs{kind=\"purge_session\",state=\"running\"} 0",
            "engram_queue_jobs{kind=\"webhook_delivery\",state=\"failed\"} 0",
            "engram_jobs_completed_total{kind=\"purge_session\"} 1",
            "engram_jobs_dead_lettered_total{kind=\"custom\"} 1",
            "engram_job_retries_total{kind=\"embed_backfill\"} 0",
            "engram_job_duration_seconds_count{kind=\"purge_session\"} 1",
            "engram_http_requests_total{class=\"5xx\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
