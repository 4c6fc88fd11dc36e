//! Reads against one session that already holds N messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Result;
use serde_json::{Value, json};

use crate::ingest::{BATCH, batch_body, prepare, timed};
use crate::report::{Row, Samples};

const SEED_CLIENTS: u64 = 4;
const PAGE: u64 = 50;

/// Message `i`'s metadata, `{"k": "v<i % 10>"}`: the filtered list matches a tenth of
/// the session.
pub fn tag(i: u64) -> Value {
    json!({"k": format!("v{}", i % 10)})
}

/// Fills session `s` with `messages` messages, in batches of up to 100, each tagged.
pub async fn seed(http: &reqwest::Client, base: &str, ws: &str, messages: u64) -> Result<u64> {
    prepare(http, base, ws, std::iter::once("s".to_string())).await?;
    let batches = messages.div_ceil(BATCH as u64);
    let next = Arc::new(AtomicU64::new(0));
    let url = format!("{base}/v3/workspaces/{ws}/sessions/s/messages");
    let tasks: Vec<_> = (0..SEED_CLIENTS)
        .map(|_| {
            let (http, url, next) = (http.clone(), url.clone(), next.clone());
            tokio::spawn(async move {
                let mut samples = Samples::default();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let first = b * BATCH as u64;
                    let end = (first + BATCH as u64).min(messages);
                    let body = batch_body(first, end, |i| Some(tag(i)));
                    let req = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body);
                    timed(&mut samples, req).await;
                }
                samples
            })
        })
        .collect();
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await?);
    }
    anyhow::ensure!(
        all.errors == 0,
        "seeding failed: {} errors, first: {:?}",
        all.errors,
        all.first_errors
    );
    Ok(messages)
}

/// One measured read operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    GetOrCreate,
    ListPage,
    Context,
    FilteredList,
    SearchRare,
    SearchCommon,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::GetOrCreate => "session get-or-create",
            Op::ListPage => "messages list page (50)",
            Op::Context => "session context 2000 tok",
            Op::FilteredList => "messages list filtered",
            Op::SearchRare => "search, 1 match (top 10)",
            Op::SearchCommon => "search, all match (top 10)",
        }
    }

    fn request(
        self,
        http: &reqwest::Client,
        base: &str,
        ws: &str,
        n: u64,
        pages: u64,
    ) -> reqwest::RequestBuilder {
        let session = format!("{base}/v3/workspaces/{ws}/sessions/s");
        match self {
            Op::GetOrCreate => http
                .post(format!("{base}/v3/workspaces/{ws}/sessions"))
                .json(&json!({"id": "s"})),
            Op::ListPage => {
                // A stride coprime with most page counts walks the whole session instead
                // of rereading the first pages from cache.
                let page = (n * 7919) % pages + 1;
                http.post(format!("{session}/messages/list?page={page}&size={PAGE}"))
                    .json(&json!({}))
            }
            Op::Context => http.get(format!("{session}/context?tokens=2000")),
            Op::FilteredList => http
                .post(format!("{session}/messages/list?page=1&size={PAGE}"))
                .json(&json!({"filters": {"metadata": {"k": "v3"}}})),
            // Each message's number is its own word, so this matches one message.
            Op::SearchRare => http.post(format!("{base}/v3/workspaces/{ws}/search")).json(
                &json!({"query": format!("message {}", (n * 7919) % pages * PAGE), "limit": 10}),
            ),
            // Every message carries these words: the whole workspace is ranked.
            Op::SearchCommon => http
                .post(format!("{base}/v3/workspaces/{ws}/search"))
                .json(&json!({"query": "museum weekdays", "limit": 10})),
        }
    }
}

/// Runs each read operation `requests` times from `clients` clients, one operation at a
/// time so each row measures one thing.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    ws: &str,
    stored: u64,
    clients: usize,
    requests: u64,
    ops: &[Op],
) -> Result<Vec<Row>> {
    let pages = stored.div_ceil(PAGE).max(1);
    let mut rows = vec![];
    for &op in ops {
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (http, base, ws, next) =
                    (http.clone(), base.to_string(), ws.to_string(), next.clone());
                tokio::spawn(async move {
                    let mut samples = Samples::default();
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= requests {
                            break;
                        }
                        timed(&mut samples, op.request(&http, &base, &ws, n, pages)).await;
                    }
                    samples
                })
            })
            .collect();
        let mut all = Samples::default();
        for t in tasks {
            all.merge(t.await?);
        }
        let wall = started.elapsed();
        let ok = all.latencies.len() as u64 - all.errors;
        rows.push(all.row(
            &format!("{} @{}k", op.name(), stored / 1000),
            clients,
            ok,
            "req/s",
            wall,
        ));
    }
    Ok(rows)
}
