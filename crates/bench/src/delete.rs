//! Session deletion: how long the `DELETE` takes to answer (it should not grow with the
//! session) and how fast the background purge removes the messages afterwards, next to
//! the floor's plain `DELETE`s of as many rows when the bench started engram itself.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use crate::floor::Floor;
use crate::reads::{seed, tag};
use crate::report::{Row, Samples};

/// Longest a purge may take before the run gives up on it.
const PURGE_LIMIT: Duration = Duration::from_secs(1800);

/// For each size: fill a session, delete it, and wait for its purge to finish.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    sizes: &[u64],
    floor: Option<&Floor>,
) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for (n, &size) in sizes.iter().enumerate() {
        // The position keeps a repeated size in a workspace of its own.
        let ws = format!("bench-delete-{n}-{size}");
        eprintln!("delete: seeding {size} messages");
        let stored = seed(http, base, &ws, size).await?;
        let url = format!("{base}/v3/workspaces/{ws}/sessions/s");
        let started = Instant::now();
        let reply = http.delete(&url).send().await?;
        let answered = started.elapsed();
        if reply.status().as_u16() != 202 {
            bail!("DELETE answered {}", reply.status());
        }
        let mut answer = Samples::default();
        answer.latencies.push(answered);
        rows.push(answer.row(
            &format!("DELETE session ({} msgs)", count_label(stored)),
            1,
            1,
            "req/s",
            answered,
        ));
        let status = format!("{base}/v3/workspaces/{ws}/queue/status");
        loop {
            let body: Value = http.get(&status).send().await?.json().await?;
            if body["deletions"]["completed"].as_i64() == Some(1) {
                break;
            }
            if body["deletions"]["failed"].as_i64().unwrap_or(0) > 0 {
                bail!("the purge was dead-lettered: {body}");
            }
            if started.elapsed() > PURGE_LIMIT {
                bail!("the purge did not finish within {PURGE_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let purged = started.elapsed();
        let mut purge = Samples::default();
        purge.latencies.push(purged);
        let mut row = purge.row(
            &format!("purge to receipt ({} msgs)", count_label(stored)),
            1,
            stored,
            "msg/s",
            purged,
        );
        match floor {
            Some(f) => {
                eprintln!("delete floor: {stored} messages");
                let floor_row = f.purge(&ws, stored, |i| tag(i).to_string()).await?;
                row.vs_floor = Some(row.throughput / floor_row.throughput.max(1e-9));
                rows.push(row);
                rows.push(floor_row);
            }
            None => rows.push(row),
        }
    }
    Ok(rows)
}

/// `1`, `10k`, `1M`: short enough for the table's first column.
fn count_label(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1000 && n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}
