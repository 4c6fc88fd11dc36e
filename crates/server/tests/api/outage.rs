//! PostgreSQL goes away while clients write and a purge runs, then comes back. During
//! the outage every request fails fast with a 503 (`Retry-After`, `{"detail": ...}`),
//! never a 500 or a hang; engram recovers without a restart; every acknowledged write is
//! there afterwards and every refused one is all there or not at all; the purge the
//! outage interrupted, on its last attempt, is finished rather than dead-lettered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use engram_core::jobs::MAX_ATTEMPTS;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::binary::{Engine, Server};
use crate::pg_cluster::Cluster;

const WRITERS: usize = 4;
const BATCH: usize = 5;
/// Messages of the session being purged when the database goes away, one per purge
/// transaction, so the purge is surely under way then.
const DOOMED: usize = 2000;
/// How long a request may take while the database is down: the pool's 3-second acquire
/// timeout plus room for a loaded machine.
const FAIL_FAST: Duration = Duration::from_secs(8);
const OUTAGE: Duration = Duration::from_secs(10);
/// Bounds every wait below; the whole test takes well under a minute.
const DEADLINE: Duration = Duration::from_secs(60);

/// Every process's settings: embeddings from the fake endpoint at `url`, so embedding
/// jobs run (and meet the outage) beside the purge.
fn env(url: &str) -> Vec<(&'static str, String)> {
    [
        ("ENGRAM_PURGE_BATCH", "1"),
        ("ENGRAM_EMBEDDINGS", "openai"),
        ("EMBEDDING_MODEL_CONFIG__OVERRIDES__BASE_URL", url),
        ("EMBEDDING_MODEL_CONFIG__MODEL", "fake"),
        ("EMBEDDING_VECTOR_DIMENSIONS", "4"),
    ]
    .map(|(k, v)| (k, v.to_string()))
    .to_vec()
}

/// An OpenAI-compatible `/embeddings` endpoint giving every input the same vector. While
/// `hold` is set, requests wait (and are counted in `held`), so an embedding job can be
/// caught between its reads and its write when the database goes away.
#[derive(Clone)]
struct FakeEmbeddings {
    hold: watch::Receiver<bool>,
    held: Arc<AtomicUsize>,
}

async fn embed(
    axum::extract::State(fake): axum::extract::State<FakeEmbeddings>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let mut hold = fake.hold.clone();
    if *hold.borrow() {
        fake.held.fetch_add(1, Ordering::SeqCst);
        let _ = hold.wait_for(|h| !*h).await;
    }
    let n = body["input"].as_array().map_or(0, Vec::len);
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"index": i, "embedding": [1.0, 0.0, 0.0, 0.0]}))
        .collect();
    axum::Json(json!({ "data": data }))
}

async fn fake_embeddings() -> (String, watch::Sender<bool>, Arc<AtomicUsize>) {
    let (release, hold) = watch::channel(false);
    let held = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/v1/embeddings", axum::routing::post(embed))
        .with_state(FakeEmbeddings {
            hold,
            held: held.clone(),
        });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, release, held)
}

/// What one write got back.
struct Outcome {
    marker: String,
    status: Option<StatusCode>,
    during_outage: bool,
    elapsed: Duration,
}

async fn sql<T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>>(
    url: &str,
    query: &str,
) -> Vec<T> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect");
    sqlx::query_as(sqlx::AssertSqlSafe(query))
        .fetch_all(&mut conn)
        .await
        .expect(query)
}

/// Writes batches of `BATCH` messages to its own session until `stop`, each batch
/// carrying a marker so its messages can be counted afterwards.
async fn writer(
    base: String,
    n: usize,
    stop: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
) -> Vec<Outcome> {
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut out = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let marker = format!("w{n}b{i}");
        let messages: Vec<Value> = (0..BATCH)
            .map(|m| json!({"peer_id": "p", "content": format!("{marker} m{m}")}))
            .collect();
        let during_outage = down.load(Ordering::SeqCst);
        let started = Instant::now();
        let sent = client
            .post(format!("{base}/v3/workspaces/o/sessions/w{n}/messages"))
            .json(&json!({ "messages": messages }))
            .send()
            .await;
        let elapsed = started.elapsed();
        let status = match sent {
            Ok(r) => {
                let status = r.status();
                let retry_after = r.headers().get("retry-after").cloned();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert!(
                    status == StatusCode::CREATED || status == StatusCode::SERVICE_UNAVAILABLE,
                    "{marker}: {status} {body}"
                );
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    assert!(retry_after.is_some(), "{marker}: 503 without Retry-After");
                    assert!(body["detail"].is_string(), "{marker}: {body}");
                }
                Some(status)
            }
            Err(e) => panic!("{marker}: engram did not answer: {e}"),
        };
        assert!(elapsed < FAIL_FAST, "{marker} took {elapsed:?}");
        // Paced, so the embedding of what was acknowledged drains in seconds.
        tokio::time::sleep(Duration::from_millis(20)).await;
        out.push(Outcome {
            marker,
            status,
            during_outage,
            elapsed,
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage_fails_fast_and_recovers_without_loss() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let engine = Engine::Postgres(cluster.url.clone(), None);
    let (embeddings, hold, held) = fake_embeddings().await;
    let env = env(&embeddings);
    let mut api_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    api_env.push(("ENGRAM_NO_WORKERS", "true"));
    let api = Server::start_with(&engine, None, &api_env).await;

    // The session whose purge the outage interrupts, queued while no worker runs and
    // put on its last attempt.
    for chunk in 0..DOOMED / 100 {
        let messages: Vec<Value> = (0..100)
            .map(|m| json!({"peer_id": "p", "content": format!("doomed {chunk} {m}")}))
            .collect();
        let r = api
            .call(
                Method::POST,
                "/v3/workspaces/o/sessions/doomed/messages",
                Some(json!({ "messages": messages })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = api
        .call(Method::DELETE, "/v3/workspaces/o/sessions/doomed", None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let _: Vec<(i64,)> = sql(
        &cluster.url,
        "UPDATE jobs SET attempts = max_attempts - 1 WHERE kind = 'purge_session' RETURNING id",
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| tokio::spawn(writer(api.base.clone(), n, stop.clone(), down.clone())))
        .collect();
    // One worker is taken up by the purge, the other embeds the writes meanwhile.
    let mut workers = Vec::new();
    for _ in 0..2 {
        let mut cmd = engine.command(&["worker", "--metrics-bind", "127.0.0.1:0"]);
        cmd.env("ENGRAM_LOG", "info").env("NO_COLOR", "1");
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        workers.push(Server::spawn(cmd, "engram metrics listening").await);
    }

    let t0 = Instant::now();
    let started = Instant::now();
    loop {
        let progress: Vec<(i64,)> = sql(
            &cluster.url,
            "SELECT messages_deleted FROM deletion_receipts",
        )
        .await;
        if progress.first().is_some_and(|(n,)| *n > 0) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the purge never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    down.store(true, Ordering::SeqCst);
    // An embedding job is held between reading its messages and writing their vectors
    // when the database goes away; it writes during the outage.
    eprintln!("purge under way at {:?}", t0.elapsed());
    hold.send_replace(true);
    let started = Instant::now();
    while held.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < DEADLINE, "no embedding request arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("embedding held at {:?}", t0.elapsed());
    cluster.down();
    hold.send_replace(false);
    tokio::time::sleep(OUTAGE).await;
    cluster.up();
    down.store(false, Ordering::SeqCst);

    // Recovered without a restart: writes succeed again.
    let recovered = Instant::now();
    loop {
        let r = api
            .call(
                Method::POST,
                "/v3/workspaces/o/sessions/probe/messages",
                Some(json!({"messages": [{"peer_id": "p", "content": "back"}]})),
            )
            .await;
        if r.status == StatusCode::CREATED {
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
        assert!(recovered.elapsed() < DEADLINE, "engram did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "writes succeed {:?} after the database came back",
        recovered.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for w in writers {
        outcomes.extend(w.await.expect("writer"));
    }

    let refused = outcomes
        .iter()
        .filter(|o| o.status == Some(StatusCode::SERVICE_UNAVAILABLE))
        .count();
    let acked = outcomes.len() - refused;
    let slowest = outcomes
        .iter()
        .filter(|o| o.status == Some(StatusCode::SERVICE_UNAVAILABLE))
        .map(|o| o.elapsed)
        .max();
    eprintln!("{acked} batches acknowledged, {refused} refused with 503 (slowest {slowest:?})");
    assert!(refused > 0, "no request met the outage");
    assert!(
        outcomes
            .iter()
            .any(|o| o.during_outage && o.status == Some(StatusCode::SERVICE_UNAVAILABLE)),
        "no 503 while the database was down"
    );

    // Every acknowledged batch is whole; every refused one is whole or absent.
    let rows: Vec<(String,)> = sql(&cluster.url, "SELECT content FROM messages").await;
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for (content,) in rows {
        if let Some((marker, _)) = content.split_once(' ') {
            *stored.entry(marker.to_string()).or_default() += 1;
        }
    }
    for o in &outcomes {
        let n = stored.get(&o.marker).copied().unwrap_or(0);
        if o.status == Some(StatusCode::CREATED) {
            assert_eq!(n, BATCH, "acknowledged batch {} lost messages", o.marker);
        } else {
            assert!(
                n == 0 || n == BATCH,
                "refused batch {} half-written: {n}",
                o.marker
            );
        }
    }
    for n in 0..WRITERS {
        let r = api
            .call(
                Method::POST,
                &format!("/v3/workspaces/o/sessions/w{n}/messages/list?size=100"),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let expected = outcomes
            .iter()
            .filter(|o| o.marker.starts_with(&format!("w{n}b")))
            .map(|o| stored.get(&o.marker).copied().unwrap_or(0))
            .sum::<usize>();
        assert_eq!(r.body["total"], expected, "session w{n} through the API");
    }

    // The interrupted purge, on its last attempt, finished after the outage.
    let started = Instant::now();
    loop {
        let jobs: Vec<(String, i64, Option<String>)> = sql(
            &cluster.url,
            "SELECT state, attempts, last_error FROM jobs WHERE kind = 'purge_session'",
        )
        .await;
        let (state, attempts, error) = jobs.first().cloned().expect("purge job");
        assert_ne!(state, "failed", "purge dead-lettered: {error:?}");
        if state == "done" {
            assert_eq!(attempts, MAX_ATTEMPTS, "the outage used up an attempt");
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "purge unfinished: {state} {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let receipt: Vec<(i64, Option<i64>)> = sql(
        &cluster.url,
        "SELECT messages_deleted, finished_at FROM deletion_receipts",
    )
    .await;
    assert_eq!(receipt[0].0, DOOMED as i64);
    assert!(receipt[0].1.is_some());
    // The embedding the outage interrupted was retried too: the queue drains, nothing
    // is dead-lettered and every message has its vector.
    let started = Instant::now();
    loop {
        let r = api.get("/v3/workspaces/o/queue/status").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["failed_work_units"], 0, "{}", r.text);
        if r.body["pending_work_units"] == 0 && r.body["in_progress_work_units"] == 0 {
            assert_eq!(r.body["total_work_units"], r.body["completed_work_units"]);
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "embedding unfinished: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unembedded: Vec<(i64,)> = sql(
        &cluster.url,
        "SELECT COUNT(*) FROM messages m WHERE NOT EXISTS \
         (SELECT 1 FROM message_embeddings e WHERE e.message_id = m.id)",
    )
    .await;
    assert_eq!(unembedded[0].0, 0, "messages without a vector");
    let hit: Vec<(i64, i64)> = sql(
        &cluster.url,
        "SELECT COUNT(*) FILTER (WHERE last_error IS NOT NULL), \
         COUNT(*) FILTER (WHERE state = 'failed') FROM jobs",
    )
    .await;
    eprintln!("{} jobs met the outage and were retried", hit[0].0);
    let reruns: Vec<(String, i64, i64)> = sql(
        &cluster.url,
        "SELECT kind, attempts, COUNT(*) FROM jobs WHERE attempts <> 1 GROUP BY kind, attempts",
    )
    .await;
    assert_eq!(
        reruns,
        [("purge_session".to_string(), MAX_ATTEMPTS, 1)],
        "the outage used up attempts"
    );
    assert_eq!(hit[0].1, 0, "dead-lettered jobs");
    let verify = engine.command(&["verify"]).output().expect("engram verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
}
