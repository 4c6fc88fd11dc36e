//! Ingest over HTTP: clients append 100-message batches, each client to its own session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{Value, json};

use crate::report::{Row, Samples};

pub const BATCH: usize = 100;

/// ~200 bytes of English-like text, different per message so nothing downstream (token
/// counting, compression, page cache) can benefit from identical payloads.
pub fn content(i: u64) -> String {
    const FILLER: &str = "The quick brown fox jumps over the lazy dog while the user asks \
        about their travel plans for next spring, a budget near two thousand, and whether \
        the museum opens early on weekdays or only at ten.";
    let mut s = format!("message {i}: ");
    s.push_str(FILLER);
    s.truncate(200);
    s
}

/// The JSON body of one batch; `metadata` gives each message its metadata, if any.
pub fn batch_body(first: u64, end: u64, metadata: impl Fn(u64) -> Option<Value>) -> Vec<u8> {
    let messages: Vec<Value> = (first..end)
        .map(|i| {
            let mut m = json!({"peer_id": "p", "content": content(i)});
            if let Some(md) = metadata(i) {
                m["metadata"] = md;
            }
            m
        })
        .collect();
    serde_json::to_vec(&json!({ "messages": messages })).expect("serializable")
}

/// Sends one request and records its latency; non-2xx and transport failures are errors.
/// Returns the body of a success.
pub async fn timed(samples: &mut Samples, req: reqwest::RequestBuilder) -> Option<Vec<u8>> {
    let started = Instant::now();
    let outcome = match req.send().await {
        Ok(r) if r.status().is_success() => {
            r.bytes().await.map(Vec::from).map_err(|e| e.to_string())
        }
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            Err(format!(
                "{status}: {}",
                body.chars().take(200).collect::<String>()
            ))
        }
        Err(e) => Err(e.to_string()),
    };
    samples.latencies.push(started.elapsed());
    outcome.map_err(|e| samples.error(e)).ok()
}

/// Creates the workspace and sessions up front (untimed), so the measured requests are
/// appends only, and so servers that do not create on first write also work.
pub async fn prepare(
    http: &reqwest::Client,
    base: &str,
    ws: &str,
    sessions: impl Iterator<Item = String>,
) -> Result<()> {
    let ok = |r: reqwest::Response| -> Result<()> {
        anyhow::ensure!(r.status().is_success(), "setup failed: {}", r.status());
        Ok(())
    };
    ok(http
        .post(format!("{base}/v3/workspaces"))
        .json(&json!({ "id": ws }))
        .send()
        .await?)?;
    for s in sessions {
        ok(http
            .post(format!("{base}/v3/workspaces/{ws}/sessions"))
            .json(&json!({ "id": s }))
            .send()
            .await?)?;
    }
    Ok(())
}

/// Runs `batches` batches in total from `clients` concurrent clients. Batches are handed
/// out from a shared counter so every client count writes the same number of rows and
/// the run ends when the work does, not when the slowest client's quota does.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    ws: &str,
    clients: usize,
    batches: u64,
) -> Result<(Row, Duration)> {
    prepare(http, base, ws, (0..clients).map(|c| format!("s{c}"))).await?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let http = http.clone();
            let url = format!("{base}/v3/workspaces/{ws}/sessions/s{c}/messages");
            let next = next.clone();
            tokio::spawn(async move {
                let mut samples = Samples::default();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let body = batch_body(b * BATCH as u64, (b + 1) * BATCH as u64, |_| None);
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
    let wall = started.elapsed();
    // Only acknowledged messages count toward throughput.
    let stored = (all.latencies.len() as u64 - all.errors) * BATCH as u64;
    let row = all.row("ingest http", clients, stored, "msg/s", wall);
    Ok((row, wall))
}
