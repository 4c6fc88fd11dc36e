//! Scale-out on one PostgreSQL database: two API nodes (`serve --no-workers`) and two
//! `engram worker` processes, under concurrent writes and session deletes sent through
//! both nodes. Every acknowledged write of a live session is readable from both nodes
//! at once; a deleted session is invisible from both nodes from its 202 on, its name
//! is reusable at once, and it is purged completely (receipts, no rows left, `engram
//! verify` clean); a write racing a delete of its session through the other node lands
//! whole on one side of it; both workers purged sessions.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::binary::{Engine, Server};
use crate::metrics::{scrape, value};

const SESSIONS: usize = 32;
/// Sessions written through one node while the other deletes them.
const RACERS: usize = 8;
const RACE_BATCHES: usize = 12;
const BATCHES: usize = 6;
const BATCH: usize = 5;
/// Bounds the wait for the purges; the whole test takes well under a minute.
const DEADLINE: Duration = Duration::from_secs(45);

const ENV: [(&str, &str); 2] = [
    ("ENGRAM_EMBEDDINGS", "off"),
    // Several transactions per purge, so the workers' claims interleave with writes.
    ("ENGRAM_PURGE_BATCH", "2"),
];

/// Session `i`'s fate: even ones are deleted halfway and then written again under the
/// same name; those with `i % 4 == 1` are deleted after their last write.
fn deleted_midway(i: usize) -> bool {
    i.is_multiple_of(2)
}

fn deleted_at_end(i: usize) -> bool {
    i % 4 == 1
}

async fn call(
    client: &Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `field` of every item of a list route's first page of 100.
async fn listed(client: &Client, base: &str, path: &str, field: &str) -> BTreeSet<String> {
    let (status, body) = call(
        client,
        base,
        Method::POST,
        &format!("{path}?size=100"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_string())
        .collect()
}

/// Contents of a session's messages as one node lists them.
async fn contents(client: &Client, base: &str, session: &str) -> BTreeSet<String> {
    let path = format!("/v3/workspaces/mp/sessions/{session}/messages/list");
    listed(client, base, &path, "content").await
}

async fn listed_sessions(client: &Client, base: &str) -> BTreeSet<String> {
    listed(client, base, "/v3/workspaces/mp/sessions/list", "id").await
}

/// Writes session `i`'s batches through alternating nodes, deleting it as its fate
/// says, and checks each step on both nodes as it goes. Returns the contents the live
/// session must hold at the end (empty when it ends deleted).
async fn drive(client: Client, nodes: [String; 2], i: usize) -> BTreeSet<String> {
    let session = format!("s{i}");
    let mut live = BTreeSet::new();
    for b in 0..BATCHES {
        let (via, other) = (&nodes[(i + b) % 2], &nodes[(i + b + 1) % 2]);
        let batch: Vec<String> = (0..BATCH).map(|m| format!("{session} b{b} m{m}")).collect();
        let messages: Vec<Value> = batch
            .iter()
            .map(|c| json!({"peer_id": "p", "content": c}))
            .collect();
        let (status, body) = call(
            &client,
            via,
            Method::POST,
            &format!("/v3/workspaces/mp/sessions/{session}/messages"),
            Some(json!({ "messages": messages })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{session} b{b}: {body}");
        live.extend(batch);
        // Acknowledged on one node, readable on the other at once.
        let id = body[0]["id"].as_str().unwrap();
        let (status, one) = call(
            &client,
            other,
            Method::GET,
            &format!("/v3/workspaces/mp/sessions/{session}/messages/{id}"),
            None,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{session} b{b} on the other node: {one}"
        );

        let midway = deleted_midway(i) && b == BATCHES / 2 - 1;
        if midway || (deleted_at_end(i) && b == BATCHES - 1) {
            let (status, body) = call(
                &client,
                other,
                Method::DELETE,
                &format!("/v3/workspaces/mp/sessions/{session}"),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::ACCEPTED, "delete {session}: {body}");
            for node in &nodes {
                assert!(
                    contents(&client, node, &session).await.is_empty(),
                    "{session} on {node}"
                );
                let (status, _) = call(
                    &client,
                    node,
                    Method::GET,
                    &format!("/v3/workspaces/mp/sessions/{session}/messages/{id}"),
                    None,
                )
                .await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{session} message on {node}");
                assert!(!listed_sessions(&client, node).await.contains(&session));
            }
            live.clear();
        }
    }
    live
}

/// A racer session's writes and its one delete, with when each was sent and answered.
struct Race {
    session: String,
    batches: Vec<(String, Instant, Instant)>,
    delete: (Instant, Instant),
}

/// Writes racer session `k` through one node while the other deletes it: each batch
/// lands whole in the deleted session or in its successor of the same name.
async fn race(client: Client, nodes: [String; 2], k: usize) -> Race {
    let session = format!("r{k}");
    let (first, mut written) = tokio::sync::watch::channel(false);
    let writes = {
        let (client, base, session) = (client.clone(), nodes[k % 2].clone(), session.clone());
        tokio::spawn(async move {
            let mut batches = Vec::new();
            for b in 0..RACE_BATCHES {
                let marker = format!("{session}b{b}");
                let messages: Vec<Value> = (0..BATCH)
                    .map(|m| json!({"peer_id": "p", "content": format!("{marker} m{m}")}))
                    .collect();
                let sent = Instant::now();
                let (status, body) = call(
                    &client,
                    &base,
                    Method::POST,
                    &format!("/v3/workspaces/mp/sessions/{session}/messages"),
                    Some(json!({ "messages": messages })),
                )
                .await;
                assert_eq!(status, StatusCode::CREATED, "{marker}: {body}");
                batches.push((marker, sent, Instant::now()));
                first.send_replace(true);
            }
            batches
        })
    };
    // The session exists (its first batch is in), then the delete meets later batches.
    written.wait_for(|w| *w).await.expect("first batch");
    tokio::time::sleep(Duration::from_millis(5 * k as u64)).await;
    let sent = Instant::now();
    let (status, body) = call(
        &client,
        &nodes[(k + 1) % 2],
        Method::DELETE,
        &format!("/v3/workspaces/mp/sessions/{session}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "delete {session}: {body}");
    let delete = (sent, Instant::now());
    Race {
        session,
        batches: writes.await.expect("racer writes"),
        delete,
    }
}

/// Checks a race against what the nodes show, and returns how many of its messages
/// went with the deleted session (what its receipt must count).
fn judge(race: &Race, visible: &BTreeSet<String>) -> i64 {
    let (delete_sent, delete_acked) = race.delete;
    let mut gone = 0;
    for (marker, sent, acked) in &race.batches {
        let shown = visible
            .iter()
            .filter(|c| c.split_once(' ').is_some_and(|(m, _)| m == marker))
            .count();
        assert!(
            shown == 0 || shown == BATCH,
            "{marker} half visible: {shown}"
        );
        if *acked < delete_sent {
            assert_eq!(
                shown, 0,
                "{marker}, acknowledged before the delete, survived it"
            );
        }
        if *sent > delete_acked {
            assert_eq!(shown, BATCH, "{marker}, sent after the delete, is missing");
        }
        if shown == 0 {
            gone += BATCH as i64;
        }
    }
    gone
}

async fn worker(engine: &Engine) -> Server {
    let mut cmd = engine.command(&["worker", "--metrics-bind", "127.0.0.1:0"]);
    cmd.env("ENGRAM_LOG", "info").env("NO_COLOR", "1").envs(ENV);
    Server::spawn(cmd, "engram metrics listening").await
}

async fn count(conn: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(conn)
        .await
        .expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_api_nodes_and_two_workers_keep_every_write_and_purge() {
    let Some(engine) = Engine::postgres().await else {
        return;
    };
    let url = engine.database_url().expect("postgres").to_string();
    let mut api_env = ENV.to_vec();
    api_env.push(("ENGRAM_NO_WORKERS", "true"));
    let apis = [
        Server::start_with(&engine, None, &api_env).await,
        Server::start_with(&engine, None, &api_env).await,
    ];
    let workers = [worker(&engine).await, worker(&engine).await];
    let nodes = [apis[0].base.clone(), apis[1].base.clone()];
    let client = apis[0].client.clone();

    let tasks: Vec<_> = (0..SESSIONS)
        .map(|i| tokio::spawn(drive(client.clone(), nodes.clone(), i)))
        .collect();
    let races: Vec<_> = (0..RACERS)
        .map(|k| tokio::spawn(race(client.clone(), nodes.clone(), k)))
        .collect();
    let mut expected = BTreeMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        expected.insert(format!("s{i}"), t.await.expect("session task"));
    }
    let mut raced = BTreeMap::new();
    for t in races {
        let race = t.await.expect("race");
        let visible = contents(&client, &nodes[0], &race.session).await;
        let gone = judge(&race, &visible);
        eprintln!(
            "{}: {gone} messages went with the deleted session, {} to its successor",
            race.session,
            visible.len()
        );
        raced.insert(race.session.clone(), gone);
        expected.insert(race.session, visible);
    }
    for node in &nodes {
        for (session, live) in &expected {
            assert_eq!(
                &contents(&client, node, session).await,
                live,
                "{session} on {node}"
            );
        }
        let listed = listed_sessions(&client, node).await;
        let alive: BTreeSet<String> = expected
            .iter()
            .filter(|(_, live)| !live.is_empty())
            .map(|(s, _)| s.clone())
            .collect();
        assert_eq!(listed, alive, "sessions listed on {node}");
    }

    let deletes = (0..SESSIONS)
        .map(|i| usize::from(deleted_midway(i)) + usize::from(deleted_at_end(i)))
        .sum::<usize>() as i64
        + RACERS as i64;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let open = count(
            &mut conn,
            "SELECT COUNT(*) FROM jobs WHERE kind = 'purge_session' AND state <> 'done'",
        )
        .await;
        if open == 0 {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "{open} purges unfinished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{deletes} purges done {:?} after the last write",
        started.elapsed()
    );

    // Receipts: one per delete, finished, counting what that incarnation held.
    let receipts: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT session_name, messages_deleted, finished_at FROM deletion_receipts ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(receipts.len() as i64, deletes, "{receipts:?}");
    for (session, messages, finished) in &receipts {
        assert!(finished.is_some(), "{session}");
        if let Some(gone) = raced.get(session) {
            assert_eq!(messages, gone, "{session}");
            continue;
        }
        let i: usize = session[1..].parse().unwrap();
        let held = if deleted_midway(i) {
            BATCHES / 2
        } else {
            BATCHES
        } * BATCH;
        assert_eq!(*messages, held as i64, "{session}");
    }
    // Nothing of a purged session is left; the live ones hold exactly what was acked.
    for (what, sql) in [
        (
            "deleted sessions",
            "SELECT COUNT(*) FROM sessions WHERE deleted_at IS NOT NULL",
        ),
        (
            "orphan messages",
            "SELECT COUNT(*) FROM messages m WHERE NOT EXISTS \
             (SELECT 1 FROM sessions s WHERE s.id = m.session_id AND s.deleted_at IS NULL)",
        ),
        (
            "orphan memberships",
            "SELECT COUNT(*) FROM session_peers sp WHERE NOT EXISTS \
             (SELECT 1 FROM sessions s WHERE s.id = sp.session_id AND s.deleted_at IS NULL)",
        ),
        (
            "unfinished jobs",
            "SELECT COUNT(*) FROM jobs WHERE state <> 'done'",
        ),
    ] {
        assert_eq!(count(&mut conn, sql).await, 0, "{what}");
    }
    let acked: usize = expected.values().map(BTreeSet::len).sum();
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM messages").await,
        acked as i64
    );

    let mut purged = 0.0;
    for w in &workers {
        let done = value(
            &scrape(&w.base, None).await,
            r#"engram_jobs_completed_total{kind="purge_session"}"#,
        );
        assert!(done > 0.0, "worker at {} purged nothing", w.base);
        purged += done;
    }
    assert_eq!(purged, deletes as f64);

    let verify = engine.command(&["verify"]).output().expect("engram verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(report.contains("store is clean"), "{report}");
}
