//! Prometheus metrics: what this process's workers and HTTP layer counted, plus the
//! queue depth read from the database at scrape time, in the text exposition format
//! (version 0.0.4), kept and rendered by `metrics-exporter-prometheus`. Each [`Metrics`]
//! owns its recorder instead of installing a global one, so every app a test starts
//! counts on its own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use engram_core::jobs::JobKind;
use engram_core::queue::{DEPTH_STATES, Job, QueueDepth};
use engram_core::time::Micros;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds in seconds, shared by every histogram: from a fast HTTP answer to a
/// job that waited minutes behind a backlog.
const BUCKETS: [f64; 15] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

const QUEUE_JOBS: &str = "engram_queue_jobs";
const COMPLETED: &str = "engram_jobs_completed_total";
const RETRIES: &str = "engram_job_retries_total";
const DEAD_LETTERED: &str = "engram_jobs_dead_lettered_total";
const RELEASED: &str = "engram_jobs_released_total";
const DURATION: &str = "engram_job_duration_seconds";
const WAIT: &str = "engram_job_queue_wait_seconds";
const HTTP_REQUESTS: &str = "engram_http_requests_total";
const HTTP_DURATION: &str = "engram_http_request_duration_seconds";

/// Every series this process exports, with its help text.
const COUNTERS: [(&str, &str); 5] = [
    (COMPLETED, "Jobs this process's workers completed."),
    (
        RETRIES,
        "Failed job attempts this process's workers scheduled to run again.",
    ),
    (
        DEAD_LETTERED,
        "Jobs this process's workers gave up on after their last attempt.",
    ),
    (
        RELEASED,
        "Jobs this process's workers handed back unfinished at shutdown.",
    ),
    (
        HTTP_REQUESTS,
        "HTTP responses of this process by status class.",
    ),
];
const HISTOGRAMS: [(&str, &str); 3] = [
    (
        DURATION,
        "Time from claim to completion of the jobs this process's workers completed.",
    ),
    (
        WAIT,
        "Time from enqueue (or an operator's re-queue) to first claim, for the jobs this process's workers claimed.",
    ),
    (
        HTTP_DURATION,
        "Time from request to response headers, every route.",
    ),
];
const QUEUE_JOBS_HELP: &str = "Jobs in the queue by kind and state (failed: dead-lettered), read from the database: the same for every process sharing it.";

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

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

/// This process's counters; shared by the HTTP layer, the workers and the scrape.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Serializes scrapes: each sets the depth gauges, then renders them.
    scrape: Mutex<()>,
    /// Every response passes here, so its series are registered once, not looked up:
    /// responses by status class (`1xx` first), then their latency.
    http_classes: [Counter; 5],
    http_duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        let http_classes = [1, 2, 3, 4, 5].map(|class| {
            let label = Label::new("class", format!("{class}xx"));
            recorder.register_counter(&Key::from_parts(HTTP_REQUESTS, vec![label]), &METADATA)
        });
        let http_duration = recorder.register_histogram(&Key::from_name(HTTP_DURATION), &METADATA);
        let metrics = Metrics {
            recorder,
            handle,
            scrape: Mutex::new(()),
            http_classes,
            http_duration,
        };
        metrics.describe();
        // Every known kind and class appears from the first scrape, at zero, so a series
        // never appears or vanishes with its work.
        for kind in JobKind::ALL.iter().map(|k| k.name()) {
            for (name, _) in &COUNTERS[..4] {
                metrics.counter(name, "kind", kind).absolute(0);
            }
            for (name, _) in &HISTOGRAMS[..2] {
                drop(metrics.histogram(name, kind));
            }
            for state in DEPTH_STATES {
                metrics.depth(kind, state).set(0.0);
            }
        }
        for class in &metrics.http_classes {
            class.absolute(0);
        }
        metrics
    }
}

impl Metrics {
    fn describe(&self) {
        let help = |name: &str, text: &str| (KeyName::from(name.to_owned()), text.to_owned());
        for (name, text) in COUNTERS {
            let (key, text) = help(name, text);
            self.recorder.describe_counter(key, None, text.into());
        }
        for (name, text) in HISTOGRAMS {
            let (key, text) = help(name, text);
            self.recorder
                .describe_histogram(key, Some(Unit::Seconds), text.into());
        }
        let (key, text) = help(QUEUE_JOBS, QUEUE_JOBS_HELP);
        self.recorder.describe_gauge(key, None, text.into());
    }

    fn counter(&self, name: &str, label: &'static str, value: &str) -> Counter {
        let key = Key::from_parts(name.to_owned(), vec![Label::new(label, value.to_owned())]);
        self.recorder.register_counter(&key, &METADATA)
    }

    /// A job histogram of `kind`.
    fn histogram(&self, name: &str, kind: &str) -> Histogram {
        let labels = vec![Label::new("kind", kind.to_owned())];
        self.recorder
            .register_histogram(&Key::from_parts(name.to_owned(), labels), &METADATA)
    }

    fn depth(&self, kind: &str, state: &str) -> Gauge {
        let labels = vec![
            Label::new("kind", kind.to_owned()),
            Label::new("state", state.to_owned()),
        ];
        self.recorder
            .register_gauge(&Key::from_parts(QUEUE_JOBS, labels), &METADATA)
    }

    /// A job was just claimed (at `now`): a first attempt records how long it waited
    /// in the queue. Later attempts do not: a takeover's wait includes the lease of the
    /// worker that lost it.
    pub fn job_claimed(&self, job: &Job, now: Micros) {
        if job.attempts != 1 {
            return;
        }
        let waited = Duration::from_micros(now.saturating_sub(job.run_at).max(0) as u64);
        self.histogram(WAIT, &job.kind).record(waited.as_secs_f64());
    }

    /// An attempt of a `kind` job ended `elapsed` after its claim.
    pub fn job_finished(&self, kind: &str, how: Finished, elapsed: Duration) {
        let counter = match how {
            Finished::Completed => {
                self.histogram(DURATION, kind).record(elapsed.as_secs_f64());
                COMPLETED
            }
            Finished::Retried => RETRIES,
            Finished::DeadLettered => DEAD_LETTERED,
            Finished::Released => RELEASED,
        };
        self.counter(counter, "kind", kind).increment(1);
    }

    fn http_response(&self, status: u16, elapsed: Duration) {
        // A status is 100..=599, so its class indexes the five counters.
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.http_classes[class].increment(1);
        self.http_duration.record(elapsed.as_secs_f64());
    }

    /// The exposition, with the queue depth just read from the database. A kind and
    /// state absent from `depth` has no jobs: its gauge reads zero.
    pub fn render(&self, depth: &[QueueDepth]) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        for kind in JobKind::ALL.iter().map(|k| k.name()) {
            for state in DEPTH_STATES {
                self.depth(kind, state).set(0.0);
            }
        }
        for d in depth {
            self.depth(&d.kind, &d.state).set(d.jobs as f64);
        }
        let rendered = self.handle.render();
        // The exporter separates families with blank lines, which the format allows but
        // line-by-line readers trip on; the exposition keeps one sample per line.
        let mut text = String::with_capacity(rendered.len());
        for line in rendered.lines().filter(|l| !l.is_empty()) {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// The layer counting every HTTP response by status class, with its latency.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.http_response(response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_appears_and_depth_fills_in() {
        let m = Metrics::default();
        m.job_finished(
            "purge_session",
            Finished::Completed,
            Duration::from_millis(2),
        );
        m.job_finished("custom", Finished::DeadLettered, Duration::ZERO);
        let depth = |jobs| QueueDepth {
            kind: "purge_session".into(),
            state: "pending".into(),
            jobs,
        };
        let text = m.render(&[depth(4)]);
        for line in [
            "engram_queue_jobs{kind=\"purge_session\",state=\"pending\"} 4",
            "engram_queue_jobs{kind=\"purge_session\",state=\"running\"} 0",
            "engram_queue_jobs{kind=\"webhook_delivery\",state=\"failed\"} 0",
            "engram_jobs_completed_total{kind=\"purge_session\"} 1",
            "engram_jobs_dead_lettered_total{kind=\"custom\"} 1",
            "engram_job_retries_total{kind=\"embed_backfill\"} 0",
            "engram_job_duration_seconds_count{kind=\"purge_session\"} 1",
            "engram_job_duration_seconds_bucket{kind=\"purge_session\",le=\"0.005\"} 1",
            "engram_http_requests_total{class=\"5xx\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        let drained = m.render(&[]);
        assert!(
            drained
                .lines()
                .any(|l| l == "engram_queue_jobs{kind=\"purge_session\",state=\"pending\"} 0"),
            "{drained}"
        );
    }
}
