//! Split processes on one PostgreSQL: an API without workers (`serve --no-workers`) and
//! two `engram worker` processes racing for the same jobs. Every job runs exactly once:
//! the webhook receiver, which records every delivery, is the witness. (SQLite has one
//! process per file, so this is PostgreSQL only.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::binary::{Engine, Server};
use crate::metrics::{Samples, scrape, value};

const SESSIONS: usize = 48;
const MESSAGES: usize = 6;
/// Everything below finishes in seconds; this bounds a hang.
const DEADLINE: Duration = Duration::from_secs(90);

const ENV: [(&str, &str); 4] = [
    ("WEBHOOK_SECRET", "race-secret"),
    ("ENGRAM_EMBEDDINGS", "off"),
    ("ENGRAM_WEBHOOK_ALLOW_PRIVATE", "true"),
    // Several transactions per purge, so the workers' claims interleave.
    ("ENGRAM_PURGE_BATCH", "2"),
];

/// Every body POSTed to it, in arrival order.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<String>>>);

async fn receive(State(r): State<Receiver>, body: String) -> axum::http::StatusCode {
    r.0.lock().unwrap().push(body);
    axum::http::StatusCode::OK
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    fn bodies(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

async fn worker(engine: &Engine) -> Server {
    let mut cmd = engine.command(&["worker", "--metrics-bind", "127.0.0.1:0"]);
    cmd.env("ENGRAM_LOG", "info").env("NO_COLOR", "1");
    cmd.envs(ENV);
    Server::spawn(cmd, "engram metrics listening").await
}

/// `(kind, state, attempts)` of every job, by id.
async fn jobs(url: &str) -> BTreeMap<i64, (String, String, i64)> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let rows: Vec<(i64, String, String, i64)> =
        sqlx::query_as("SELECT id, kind, state, attempts FROM jobs")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(id, k, s, a)| (id, (k, s, a)))
        .collect()
}

fn completed(samples: &Samples, kind: &str) -> f64 {
    value(
        samples,
        &format!(r#"engram_jobs_completed_total{{kind="{kind}"}}"#),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_workers_never_run_a_job_twice() {
    let Some(engine) = Engine::postgres().await else {
        return;
    };
    let url = engine.database_url().expect("postgres").to_string();
    let mut api_env = ENV.to_vec();
    api_env.push(("ENGRAM_NO_WORKERS", "true"));
    let api = Server::start_with(&engine, None, &api_env).await;
    let (receiver, hook) = Receiver::start().await;
    let r = api
        .call(Method::POST, "/v3/workspaces", Some(json!({"id": "race"})))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = api
        .call(
            Method::POST,
            "/v3/workspaces/race/webhooks",
            Some(json!({ "url": hook })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    for s in 0..SESSIONS {
        let messages: Vec<Value> = (0..MESSAGES)
            .map(|m| json!({"peer_id": "p", "content": format!("s{s} m{m}")}))
            .collect();
        let r = api
            .call(
                Method::POST,
                &format!("/v3/workspaces/race/sessions/s{s}/messages"),
                Some(json!({ "messages": messages })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }

    // Both workers are up before any job exists, then the deletions arrive at once.
    let workers = [worker(&engine).await, worker(&engine).await];
    let mut deletes = tokio::task::JoinSet::new();
    for s in 0..SESSIONS {
        let (client, base) = (api.client.clone(), api.base.clone());
        deletes.spawn(async move {
            client
                .delete(format!("{base}/v3/workspaces/race/sessions/s{s}"))
                .send()
                .await
                .expect("delete")
                .status()
        });
    }
    while let Some(status) = deletes.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::ACCEPTED);
    }

    // A purge per session, then a delivery per purge.
    let started = Instant::now();
    loop {
        let all = jobs(&url).await;
        if all.len() == 2 * SESSIONS && all.values().all(|(_, state, _)| state == "done") {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "jobs unfinished after {DEADLINE:?}: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Room for a duplicate to show up, were a job run twice.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut per_session: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for body in receiver.bodies() {
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["type"], "session.deleted", "{body}");
        let session = event["data"]["session_id"].as_str().unwrap().to_string();
        per_session.entry(session).or_default().push(event);
    }
    assert_eq!(per_session.len(), SESSIONS, "{per_session:#?}");
    for (session, events) in &per_session {
        assert_eq!(
            events.len(),
            1,
            "{session} delivered {} times",
            events.len()
        );
        assert_eq!(events[0]["data"]["messages_deleted"], MESSAGES, "{session}");
        assert_eq!(events[0]["data"]["members_deleted"], 1, "{session}");
    }
    let all = jobs(&url).await;
    let of_kind = |kind: &str| all.values().filter(|(k, ..)| k == kind).count();
    assert_eq!(of_kind("purge_session"), SESSIONS, "{all:?}");
    assert_eq!(of_kind("webhook_delivery"), SESSIONS, "{all:?}");
    assert!(
        all.values().all(|(.., attempts)| *attempts == 1),
        "a job was claimed more than once: {all:?}"
    );

    let mut purges = 0.0;
    let mut deliveries = 0.0;
    for w in &workers {
        let samples = scrape(&w.base, None).await;
        let (p, d) = (
            completed(&samples, "purge_session"),
            completed(&samples, "webhook_delivery"),
        );
        assert!(p + d > 0.0, "worker at {} ran no job", w.base);
        for counter in [
            "engram_job_retries_total",
            "engram_jobs_dead_lettered_total",
        ] {
            for kind in ["purge_session", "webhook_delivery"] {
                let series = format!(r#"{counter}{{kind="{kind}"}}"#);
                assert_eq!(value(&samples, &series), 0.0, "{series}");
            }
        }
        purges += p;
        deliveries += d;
    }
    assert_eq!((purges, deliveries), (SESSIONS as f64, SESSIONS as f64));
    let api_samples = scrape(&api.base, None).await;
    assert_eq!(completed(&api_samples, "purge_session"), 0.0, "no workers");
    let depth: f64 = api_samples
        .iter()
        .filter(|(k, _)| k.starts_with("engram_queue_jobs{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(depth, 0.0);

    let verify = engine.command(&["verify"]).output().expect("engram verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(report.contains("store is clean"), "{report}");
}
