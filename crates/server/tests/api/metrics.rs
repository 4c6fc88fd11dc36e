//! `GET /metrics`: the exposition parses, a purge shows as completed with the queue
//! drained, a failing job as retries and a dead letter, and only admins may scrape.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::auth::{key, with_auth};
use crate::both_engines;
use crate::faults::{execute, job_state, set_fault};
use crate::helpers::TestApp;

/// Samples by `name{labels}` exactly as written (labels in the server's order).
pub type Samples = BTreeMap<String, f64>;

/// Parses the text exposition format strictly: `# HELP` and `# TYPE` lines, and
/// samples `name{label="value",...} number` of a family whose type came before.
pub fn parse(text: &str) -> Samples {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Samples::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (Some(keyword), Some(name), Some(rest)) =
                (parts.next(), parts.next(), parts.next())
            else {
                panic!("bad comment line {line:?}");
            };
            assert!(valid_name(name), "bad metric name in {line:?}");
            match keyword {
                "HELP" => assert!(!rest.is_empty(), "empty help in {line:?}"),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram"].contains(&rest),
                        "bad type in {line:?}"
                    );
                    let earlier = types.insert(name.to_string(), rest.to_string());
                    assert!(earlier.is_none(), "{name} typed twice");
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(valid_name(name), "bad sample name in {line:?}");
        if name_end < series.len() {
            check_labels(&series[name_end..], line);
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "{name} has no TYPE before it");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `{a="x",b="y\"z"}`: names, quotes, and only `\\`, `\"`, `\n` escapes.
fn check_labels(labels: &str, line: &str) {
    let inner = labels
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
    let mut rest = inner;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in {line:?}"));
        assert!(valid_name(name), "bad label name in {line:?}");
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => {
                    let escaped = chars.next().map(|(_, c)| c);
                    assert!(
                        matches!(escaped, Some('\\' | '"' | 'n')),
                        "bad escape in {line:?}"
                    );
                }
                Some((i, '"')) => break i,
                Some((_, '\n')) => panic!("raw newline in {line:?}"),
                Some(_) => {}
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// Scrapes the app and checks the content type.
pub async fn scrape(base: &str, token: Option<&str>) -> Samples {
    let mut req = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse(&resp.text().await.expect("body"))
}

pub fn value(samples: &Samples, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

/// Scrapes until `series` reaches `want` (counters move after the store recorded the
/// job), then once more: a scrape reads the depth before the counters, so only a
/// later one has the depth that goes with them.
async fn scrape_until(app: &TestApp, series: &str, want: f64) -> Samples {
    for _ in 0..200 {
        if scrape(&app.base, None).await.get(series) == Some(&want) {
            return scrape(&app.base, None).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} never reached {want}");
}

fn depth_total(samples: &Samples) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with("engram_queue_jobs{"))
        .map(|(_, v)| v)
        .sum()
}

both_engines!(
    a_purge_is_counted_and_the_queue_drains,
    |app: TestApp| async move {
        let before = scrape(&app.base, None).await;
        assert_eq!(
            value(
                &before,
                r#"engram_jobs_completed_total{kind="purge_session"}"#
            ),
            0.0
        );
        app.add_messages("w", "s", &[("p", "a"), ("p", "b")]).await;
        let r = app
            .call(Method::DELETE, "/v3/workspaces/w/sessions/s", None)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);

        let after = scrape_until(
            &app,
            r#"engram_jobs_completed_total{kind="purge_session"}"#,
            1.0,
        )
        .await;
        assert_eq!(depth_total(&after), 0.0, "{after:#?}");
        for state in ["pending", "running", "failed"] {
            let series = format!(r#"engram_queue_jobs{{kind="purge_session",state="{state}"}}"#);
            assert_eq!(value(&after, &series), 0.0);
        }
        for series in [
            r#"engram_job_duration_seconds_count{kind="purge_session"}"#,
            r#"engram_job_duration_seconds_bucket{kind="purge_session",le="+Inf"}"#,
            r#"engram_job_queue_wait_seconds_count{kind="purge_session"}"#,
        ] {
            assert_eq!(value(&after, series), 1.0, "{series}");
        }
        assert_eq!(
            value(&after, r#"engram_job_retries_total{kind="purge_session"}"#),
            0.0
        );
        assert!(value(&after, r#"engram_http_requests_total{class="2xx"}"#) >= 3.0);
        assert!(value(&after, "engram_http_request_duration_seconds_count") >= 3.0);
        let missing = app
            .call(Method::DELETE, "/v3/workspaces/w/sessions/s", None)
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let counted = scrape(&app.base, None).await;
        assert!(value(&counted, r#"engram_http_requests_total{class="4xx"}"#) >= 1.0);
    }
);

both_engines!(
    a_failing_job_counts_retries_then_a_dead_letter,
    |app: TestApp| async move {
        app.add_messages("w", "s", &[("p", "a")]).await;
        set_fault(&app, true).await;
        let r = app
            .call(Method::DELETE, "/v3/workspaces/w/sessions/s", None)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let retries = r#"engram_job_retries_total{kind="purge_session"}"#;
        let failed = scrape_until(&app, retries, 1.0).await;
        assert_eq!(
            value(
                &failed,
                r#"engram_queue_jobs{kind="purge_session",state="pending"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                &failed,
                r#"engram_jobs_completed_total{kind="purge_session"}"#
            ),
            0.0
        );

        // The next attempt is made the last one, and runs now instead of after backoff.
        let (attempts, state, _) = job_state(&app).await;
        assert_eq!((attempts, state.as_str()), (1, "pending"));
        execute(&app, &["UPDATE jobs SET max_attempts = 2, run_at = 0"]).await;
        let dead = scrape_until(
            &app,
            r#"engram_jobs_dead_lettered_total{kind="purge_session"}"#,
            1.0,
        )
        .await;
        assert_eq!(value(&dead, retries), 1.0);
        assert_eq!(
            value(
                &dead,
                r#"engram_queue_jobs{kind="purge_session",state="failed"}"#
            ),
            1.0
        );
        assert_eq!(depth_total(&dead), 1.0);

        // Fixed and re-run by an operator: completed, and no longer dead.
        set_fault(&app, false).await;
        let id = app.store.list_jobs(Some("failed"), 1).await.unwrap()[0].id;
        assert!(app.store.retry_job(id).await.unwrap());
        let done = scrape_until(
            &app,
            r#"engram_jobs_completed_total{kind="purge_session"}"#,
            1.0,
        )
        .await;
        assert_eq!(depth_total(&done), 0.0);
    }
);

both_engines!(only_admin_keys_may_scrape, |plain: TestApp| async move {
    let app = if plain.db_url.is_some() {
        match TestApp::postgres_configured(with_auth).await {
            Some(app) => app,
            None => return,
        }
    } else {
        TestApp::sqlite_configured(with_auth).await
    };
    let none = app.get("/metrics").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.body["detail"], "No access token provided");
    let workspace = key(false, Some("w"), None, None);
    let r = app
        .call_as(Some(&workspace), Method::GET, "/metrics", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["detail"], "Resource requires admin privileges");
    let admin = key(true, None, None, None);
    let samples = scrape(&app.base, Some(&admin)).await;
    assert!(samples.contains_key(r#"engram_queue_jobs{kind="purge_session",state="pending"}"#));
});

/// `engram worker --metrics-bind` serves the same route behind the same settings.
#[tokio::test]
async fn a_worker_serves_metrics_to_admins_only() {
    let engine = crate::binary::Engine::sqlite();
    let mut cmd = engine.command(&["worker", "--metrics-bind", "127.0.0.1:0"]);
    cmd.env("ENGRAM_LOG", "info")
        .env("NO_COLOR", "1")
        .env("ENGRAM_EMBEDDINGS", "off")
        .env("AUTH_USE_AUTH", "true")
        .env("AUTH_JWT_SECRET", crate::auth::SECRET);
    let worker = crate::binary::Server::spawn(cmd, "engram metrics listening").await;
    let workspace = key(false, Some("w"), None, None);
    let denied = worker
        .send(Method::GET, "/metrics", None, Some(&workspace))
        .await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.body["detail"], "Resource requires admin privileges");
    let admin = key(true, None, None, None);
    let samples = scrape(&worker.base, Some(&admin)).await;
    assert_eq!(
        value(
            &samples,
            r#"engram_jobs_completed_total{kind="purge_session"}"#
        ),
        0.0
    );
}
