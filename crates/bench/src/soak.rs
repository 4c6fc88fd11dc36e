//! Load and soak: a bounded mixed load on one workspace for `--soak-seconds`, loopback only.
//! Clients write small batches to sessions of their own, read pages, contexts and search
//! results, and delete whole sessions, re-creating the same ids later. Every acknowledged
//! message id is kept per live session; after the load each live session is read back in
//! full (an acknowledged id missing is a lost write, an id never acknowledged is a stray),
//! every deleted session's purge must finish, and the server's RSS, sampled every second,
//! is compared between the end of the warm-up and the end of the load.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::Url;
use serde_json::{Value, json};

use crate::ingest::{content, prepare, timed};
use crate::report::{Row, Samples, Soak};

const WS: &str = "bench-soak";
/// Sessions per client. Each belongs to one client, so no other client's delete can race
/// its reads, and the acknowledged set of a session is known exactly.
const SLOTS: usize = 8;
const WRITE_BATCH: u64 = 10;
/// A session this full is deleted instead of written: it bounds the live data, so RSS
/// growth after the warm-up means a leak rather than a bigger data set.
const SESSION_CAP: usize = 1000;
const READ_PAGE: usize = 100;
/// A drain that completes no purge for this long is stuck rather than slow: purges that
/// fall behind the load are reported (drain time), only purges that stop fail the run.
const STALL: Duration = Duration::from_secs(60);
/// Longest the drain waits, however steady its progress.
const DRAIN_LIMIT: Duration = Duration::from_secs(1800);

#[derive(Clone, Copy)]
enum Op {
    Create,
    Write,
    Page,
    Context,
    SessionSearch,
    WorkspaceSearch,
    Delete,
}

const OPS: [Op; 7] = [
    Op::Create,
    Op::Write,
    Op::Page,
    Op::Context,
    Op::SessionSearch,
    Op::WorkspaceSearch,
    Op::Delete,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "soak session create",
            Op::Write => "soak write (10 msgs)",
            Op::Page => "soak messages page (50)",
            Op::Context => "soak context 2000 tok",
            Op::SessionSearch => "soak search session",
            Op::WorkspaceSearch => "soak search workspace",
            Op::Delete => "soak session delete",
        }
    }
}

/// xorshift64: a reproducible stream per client without a dependency; its statistical
/// quality does not matter for picking operations.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Slot {
    name: String,
    live: bool,
    /// Ids of the messages the server acknowledged since the session was (re)created.
    acked: Vec<String>,
}

struct Client {
    rng: Rng,
    slots: Vec<Slot>,
    samples: [Samples; OPS.len()],
    /// Numbers message contents, from `first_msg` up: unique across clients.
    first_msg: u64,
    next_msg: u64,
    acknowledged: u64,
    deleted: u64,
}

impl Client {
    fn new(id: usize) -> Client {
        Client {
            rng: Rng((id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            slots: (0..SLOTS)
                .map(|s| Slot {
                    name: format!("c{id}-{s}"),
                    live: false,
                    acked: vec![],
                })
                .collect(),
            samples: std::array::from_fn(|_| Samples::default()),
            first_msg: id as u64 * 1_000_000_000,
            next_msg: id as u64 * 1_000_000_000,
            acknowledged: 0,
            deleted: 0,
        }
    }

    /// Picks one operation on a random slot: roughly 45% writes, 50% reads, 5% deletes.
    fn pick(&mut self) -> (usize, Op) {
        let s = self.rng.below(SLOTS as u64) as usize;
        let roll = self.rng.below(100);
        let slot = &self.slots[s];
        let op = if !slot.live {
            Op::Create
        } else if roll < 5 || slot.acked.len() >= SESSION_CAP {
            Op::Delete
        } else if roll < 50 || slot.acked.is_empty() {
            Op::Write
        } else if roll < 70 {
            Op::Page
        } else if roll < 85 {
            Op::Context
        } else if roll < 95 {
            Op::SessionSearch
        } else {
            Op::WorkspaceSearch
        };
        (s, op)
    }

    async fn step(&mut self, http: &reqwest::Client, base: &str) {
        let (s, op) = self.pick();
        let session = format!("{base}/v3/workspaces/{WS}/sessions/{}", self.slots[s].name);
        // A number this client wrote: as a word, it matches one message (or none, deleted).
        let written = self.rng.below((self.next_msg - self.first_msg).max(1));
        let query = json!({"query": format!("message {}", self.first_msg + written), "limit": 10});
        let req = match op {
            Op::Create => http
                .post(format!("{base}/v3/workspaces/{WS}/sessions"))
                .json(&json!({"id": self.slots[s].name})),
            Op::Write => {
                let first = self.next_msg;
                self.next_msg += WRITE_BATCH;
                let messages: Vec<Value> = (first..first + WRITE_BATCH)
                    .map(|i| json!({"peer_id": "p", "content": content(i)}))
                    .collect();
                http.post(format!("{session}/messages"))
                    .json(&json!({ "messages": messages }))
            }
            Op::Page => {
                let pages = self.slots[s].acked.len().div_ceil(50) as u64;
                let page = self.rng.below(pages.max(1)) + 1;
                http.post(format!("{session}/messages/list?page={page}&size=50"))
                    .json(&json!({}))
            }
            Op::Context => http.get(format!("{session}/context?tokens=2000")),
            Op::SessionSearch => http.post(format!("{session}/search")).json(&query),
            Op::WorkspaceSearch => http
                .post(format!("{base}/v3/workspaces/{WS}/search"))
                .json(&query),
            Op::Delete => http.delete(&session),
        };
        let samples = &mut self.samples[op as usize];
        let Some(body) = timed(samples, req).await else {
            // The run has failed already; a pause keeps a dead server from turning into
            // millions of recorded errors.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        };
        let slot = &mut self.slots[s];
        match op {
            Op::Create => slot.live = true,
            Op::Delete => {
                slot.live = false;
                slot.acked.clear();
                self.deleted += 1;
            }
            Op::Write => match message_ids(&body) {
                Some(ids) if ids.len() as u64 == WRITE_BATCH => {
                    self.acknowledged += WRITE_BATCH;
                    slot.acked.extend(ids);
                }
                _ => samples.error(format!(
                    "write acknowledged without {WRITE_BATCH} message ids: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                )),
            },
            _ => {}
        }
    }
}

fn message_ids(body: &[u8]) -> Option<Vec<String>> {
    let items: Vec<Value> = serde_json::from_slice(body).ok()?;
    items
        .iter()
        .map(|m| m["id"].as_str().map(str::to_string))
        .collect()
}

/// Refuses anything but a loopback address: the soak is a load test, never to be pointed
/// at a shared server by a mistyped `--url`.
pub fn require_loopback(base: &str) -> Result<()> {
    let url = Url::parse(base).with_context(|| format!("parse {base}"))?;
    let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!("the soak runs against loopback only, not {base}");
    }
    Ok(())
}

/// Runs the load for `seconds` from `clients` clients, then checks and drains; `rss`
/// reads the server's RSS in MB when the bench started it.
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    seconds: u64,
    clients: usize,
    rss: &dyn Fn() -> Option<f64>,
) -> Result<(Vec<Row>, Soak)> {
    prepare(http, base, WS, std::iter::empty()).await?;
    let load = Duration::from_secs(seconds);
    let warm_up = (load / 10).min(Duration::from_secs(30));
    let started = Instant::now();
    let deadline = started + load;
    let tasks: Vec<_> = (0..clients)
        .map(|id| {
            let (http, base) = (http.clone(), base.to_string());
            tokio::spawn(async move {
                let mut c = Client::new(id);
                while Instant::now() < deadline {
                    c.step(&http, &base).await;
                }
                c
            })
        })
        .collect();
    let mut rss_samples = vec![];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < deadline {
        tick.tick().await;
        if let Some(mb) = rss() {
            rss_samples.push((started.elapsed(), mb));
        }
    }
    let mut done = vec![];
    for t in tasks {
        done.push(t.await?);
    }
    let wall = started.elapsed();
    if let Some(mb) = rss() {
        rss_samples.push((wall, mb));
    }

    let mut summary = Soak {
        load_s: wall.as_secs_f64(),
        clients,
        warm_up_s: warm_up.as_secs_f64(),
        ..Soak::default()
    };
    let after: Vec<f64> = rss_samples
        .iter()
        .filter(|(t, _)| *t >= warm_up)
        .map(|(_, mb)| *mb)
        .collect();
    summary.rss_warm_mb = after.first().copied();
    summary.rss_end_mb = after.last().copied();
    summary.rss_max_mb = after.iter().copied().reduce(f64::max);
    if let (Some(w), Some(e)) = (summary.rss_warm_mb, summary.rss_end_mb) {
        summary.rss_growth_pct = Some((e - w) / w * 100.0);
    }
    summary.acknowledged_messages = done.iter().map(|c| c.acknowledged).sum();
    summary.sessions_deleted = done.iter().map(|c| c.deleted).sum();

    let mut rows = vec![];
    for op in OPS {
        let mut all = Samples::default();
        for c in done.iter_mut() {
            all.merge(std::mem::take(&mut c.samples[op as usize]));
        }
        summary.errors += all.errors;
        let ok = all.latencies.len() as u64 - all.errors;
        rows.push(match op {
            Op::Write => all.row(
                op.name(),
                clients,
                summary.acknowledged_messages,
                "msg/s",
                wall,
            ),
            _ => all.row(op.name(), clients, ok, "req/s", wall),
        });
    }
    eprintln!("soak: reading back every live session");
    rows.push(check(http, base, &done, &mut summary).await);
    eprintln!("soak: waiting for {} purges", summary.sessions_deleted);
    drain(http, base, &mut summary).await;
    Ok((rows, summary))
}

/// Reads every live session back and compares it with what the server acknowledged.
async fn check(http: &reqwest::Client, base: &str, done: &[Client], summary: &mut Soak) -> Row {
    let started = Instant::now();
    let mut samples = Samples::default();
    for slot in done.iter().flat_map(|c| &c.slots).filter(|s| s.live) {
        let Some(found) = read_back(http, base, &slot.name, &mut samples).await else {
            continue;
        };
        let acked: HashSet<&str> = slot.acked.iter().map(String::as_str).collect();
        summary.live_sessions_checked += 1;
        summary.messages_checked += found.len() as u64;
        summary.lost_writes += acked.iter().filter(|id| !found.contains(**id)).count() as u64;
        summary.stray_messages += found
            .iter()
            .filter(|id| !acked.contains(id.as_str()))
            .count() as u64;
    }
    summary.errors += samples.errors;
    let checked = summary.messages_checked;
    samples.row(
        "soak read-back (100/page)",
        1,
        checked,
        "msg/s",
        started.elapsed(),
    )
}

/// Waits until no purge of the workspace is pending or running, or they stall.
async fn drain(http: &reqwest::Client, base: &str, summary: &mut Soak) {
    let started = Instant::now();
    let mut progressed = started;
    let status = format!("{base}/v3/workspaces/{WS}/queue/status");
    loop {
        let body = match queue_status(http, &status).await {
            Ok(body) => body,
            Err(e) => {
                summary.errors += 1;
                eprintln!("  soak queue status error: {e:#}");
                break;
            }
        };
        let n = |k: &str| body["deletions"][k].as_i64().unwrap_or(0);
        if n("completed") > summary.purges_completed {
            progressed = Instant::now();
        }
        summary.purges_completed = n("completed");
        summary.purges_failed = n("failed");
        summary.purges_unfinished = n("pending") + n("in_progress");
        if summary.purges_unfinished == 0
            || progressed.elapsed() > STALL
            || started.elapsed() > DRAIN_LIMIT
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    summary.drain_s = started.elapsed().as_secs_f64();
}

async fn queue_status(http: &reqwest::Client, url: &str) -> Result<Value> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Every message id of a session, a page at a time; `None` if a request failed.
async fn read_back(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    samples: &mut Samples,
) -> Option<HashSet<String>> {
    let url = format!("{base}/v3/workspaces/{WS}/sessions/{session}/messages/list");
    let mut found = HashSet::new();
    for page in 1.. {
        let req = http
            .post(format!("{url}?page={page}&size={READ_PAGE}"))
            .json(&json!({}));
        let body = timed(samples, req).await?;
        let parsed: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                samples.error(format!("read-back page is not JSON: {e}"));
                return None;
            }
        };
        let items = parsed["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        found.extend(
            items
                .iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string)),
        );
        if page >= parsed["pages"].as_i64().unwrap_or(0) {
            break;
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::require_loopback;

    #[test]
    fn only_loopback_is_accepted() {
        for ok in [
            "http://127.0.0.1:8000",
            "http://localhost:8000",
            "http://[::1]:8000",
        ] {
            assert!(require_loopback(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.1:8000",
            "https://api.example.com",
            "nonsense",
        ] {
            assert!(require_loopback(refused).is_err(), "{refused}");
        }
    }
}
