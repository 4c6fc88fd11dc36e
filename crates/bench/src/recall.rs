//! Retrieval quality on LoCoMo (Maharana et al., ACL 2024), the development half kept
//! outside the repository (CC BY-NC 4.0, read at run time, never copied in).
//!
//! Each conversation goes into its own workspace over HTTP: one session per `session_N`,
//! each turn one message whose `peer_id` is the speaker (made a valid name) and whose
//! content is the turn's text only (no image caption, no date), with metadata
//! `{"dia_id": ...}` so a search hit maps back to its turn. After the queue has drained
//! (every turn has its vector), every question is asked verbatim through
//! `POST /v3/workspaces/{w}/search` with `limit` 10, one at a time. The paper's metric:
//! for each question with evidence, the fraction of its evidence turns among the top k
//! hits, averaged over questions (overall and per category; 5 is adversarial).
//!
//! Beside it, a plain Okapi BM25 computed here over the same turns of the same
//! conversation (k1 1.2, b 0.75, Lucene's non-negative idf, lowercase alphanumeric tokens,
//! no stemming, no stop words; documents scoring 0 are not returned) with the same metric.
//!
//! Evidence ids are split on `;` and spaces (one item lists two turns). The few evidence
//! ids that name no turn (`D`, `D:11:26`, ...) are kept: they count as misses for both.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ingest::{BATCH, prepare};
use crate::report::{Row, Samples};

/// Hits asked for per question; recall is measured at 5 and at this.
pub const LIMIT: usize = 10;
const KS: [usize; 2] = [5, LIMIT];

/// One turn of a conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct Turn {
    pub speaker: String,
    pub dia_id: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    pub question: String,
    #[serde(default)]
    pub evidence: Vec<String>,
    pub category: u8,
}

/// One LoCoMo conversation, its sessions in order.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub sample_id: String,
    /// `(N, turns)` for each `session_N`, by N.
    pub sessions: Vec<(u32, Vec<Turn>)>,
    pub qa: Vec<Question>,
}

impl Conversation {
    pub fn turns(&self) -> impl Iterator<Item = &Turn> {
        self.sessions.iter().flat_map(|(_, t)| t)
    }
}

#[derive(Deserialize)]
struct RawSample {
    sample_id: String,
    conversation: serde_json::Map<String, Value>,
    qa: Vec<Question>,
}

/// Parses LoCoMo's JSON (a list of samples). `session_N_date_time` and the other keys of
/// `conversation` are ignored, as are the turns' images and captions.
pub fn parse(json: &str) -> Result<Vec<Conversation>> {
    let raw: Vec<RawSample> = serde_json::from_str(json).context("parse LoCoMo JSON")?;
    raw.into_iter()
        .map(|s| {
            let mut sessions = vec![];
            for (key, value) in &s.conversation {
                let Some(n) = key
                    .strip_prefix("session_")
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let turns: Vec<Turn> = serde_json::from_value(value.clone())
                    .with_context(|| format!("{} {key}", s.sample_id))?;
                sessions.push((n, turns));
            }
            sessions.sort_by_key(|(n, _)| *n);
            Ok(Conversation {
                sample_id: s.sample_id,
                sessions,
                qa: s.qa,
            })
        })
        .collect()
}

/// A question's evidence turn ids, deduplicated (`"D8:6; D9:17"` is two).
pub fn evidence_ids(q: &Question) -> Vec<String> {
    let mut seen = HashSet::new();
    q.evidence
        .iter()
        .flat_map(|e| e.split(|c: char| c == ';' || c.is_whitespace()))
        .filter(|id| !id.is_empty())
        .filter(|id| seen.insert(id.to_string()))
        .map(str::to_string)
        .collect()
}

/// The fraction of `evidence` among the first `k` of `ranked`.
pub fn recall_at(evidence: &[String], ranked: &[String], k: usize) -> f64 {
    if evidence.is_empty() {
        return 0.0;
    }
    let top: HashSet<&str> = ranked.iter().take(k).map(String::as_str).collect();
    let found = evidence.iter().filter(|e| top.contains(e.as_str())).count();
    found as f64 / evidence.len() as f64
}

/// A valid peer or workspace name (`^[a-zA-Z0-9_-]+$`).
pub fn name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.is_empty() { "_".into() } else { n }
}

/// Lowercase alphanumeric tokens.
pub fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Okapi BM25 over a fixed set of documents.
pub struct Bm25 {
    docs: Vec<HashMap<String, u32>>,
    lengths: Vec<f64>,
    avg_len: f64,
    df: HashMap<String, u32>,
}

impl Bm25 {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;

    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Bm25 {
        let mut docs = vec![];
        let mut lengths = vec![];
        let mut df: HashMap<String, u32> = HashMap::new();
        for text in texts {
            let toks = tokens(text);
            lengths.push(toks.len() as f64);
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in toks {
                *tf.entry(t).or_default() += 1;
            }
            for t in tf.keys() {
                *df.entry(t.clone()).or_default() += 1;
            }
            docs.push(tf);
        }
        let avg_len = lengths.iter().sum::<f64>() / (lengths.len().max(1) as f64);
        Bm25 {
            docs,
            lengths,
            avg_len: avg_len.max(1e-9),
            df,
        }
    }

    /// The indexes of the `k` best documents for `query`, best first; ties go to the
    /// earlier document, documents scoring 0 are left out.
    pub fn top(&self, query: &str, k: usize) -> Vec<usize> {
        let n = self.docs.len() as f64;
        let mut terms = tokens(query);
        terms.sort();
        terms.dedup();
        let weights: Vec<(&str, f64)> = terms
            .iter()
            .filter_map(|t| {
                let df = f64::from(*self.df.get(t)?);
                Some((t.as_str(), (1.0 + (n - df + 0.5) / (df + 0.5)).ln()))
            })
            .collect();
        let mut scored: Vec<(usize, f64)> = self
            .docs
            .iter()
            .enumerate()
            .filter_map(|(i, tf)| {
                let norm = Self::K1 * (1.0 - Self::B + Self::B * self.lengths[i] / self.avg_len);
                let score: f64 = weights
                    .iter()
                    .filter_map(|(t, idf)| {
                        let f = f64::from(*tf.get(*t)?);
                        Some(idf * f * (Self::K1 + 1.0) / (f + norm))
                    })
                    .sum();
                (score > 0.0).then_some((i, score))
            })
            .collect();
        // Stable: equal scores keep document order.
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.into_iter().take(k).map(|(i, _)| i).collect()
    }
}

/// Per-question recall, summed by category.
#[derive(Default)]
struct Tally {
    /// category (0 = all) -> (questions, sum of recall@5, sum of recall@10)
    by: BTreeMap<u8, (u64, [f64; 2])>,
    samples: BTreeMap<u8, Samples>,
}

impl Tally {
    fn add(&mut self, category: u8, evidence: &[String], ranked: &[String], took: Duration) {
        for c in [0, category] {
            let e = self.by.entry(c).or_default();
            e.0 += 1;
            for (sum, k) in e.1.iter_mut().zip(KS) {
                *sum += recall_at(evidence, ranked, k);
            }
            self.samples.entry(c).or_default().latencies.push(took);
        }
    }

    fn error(&mut self, category: u8, what: String) {
        for c in [0, category] {
            self.samples.entry(c).or_default().error(what.clone());
        }
    }

    /// One row per k and category: the mean recall in `throughput` (unit `recall`), the
    /// questions in `requests`, the per-question latency of the retriever.
    fn rows(mut self, who: &str) -> Vec<(String, Row)> {
        let latency: BTreeMap<u8, Row> = std::mem::take(&mut self.samples)
            .into_iter()
            .map(|(c, s)| (c, s.row(who, 1, 0, "recall", Duration::ZERO)))
            .collect();
        let mut out = vec![];
        for (i, k) in KS.iter().enumerate() {
            for (&c, &(n, sums)) in &self.by {
                let label = if c == 0 {
                    format!("recall@{k}")
                } else {
                    format!("recall@{k} cat {c}")
                };
                let mut row = latency[&c].clone();
                row.scenario = format!("{label} {who}");
                row.requests = n;
                row.throughput = sums[i] / n.max(1) as f64;
                out.push((label, row));
            }
        }
        out
    }
}

/// Reads LoCoMo, writes it into engram, asks every question and returns the table rows:
/// for each measure the engram row then the BM25 row (whose `vs floor` is engram / BM25).
pub async fn run(
    http: &reqwest::Client,
    base: &str,
    locomo: &Path,
    conversations: Option<usize>,
) -> Result<Vec<Row>> {
    let json = std::fs::read_to_string(locomo).with_context(|| {
        format!(
            "read {} (LoCoMo dev half; pass --locomo or ENGRAM_BENCH_LOCOMO)",
            locomo.display()
        )
    })?;
    let mut data = parse(&json)?;
    if let Some(n) = conversations {
        data.truncate(n);
    }
    if data.is_empty() {
        bail!("no conversations in {}", locomo.display());
    }

    let started = Instant::now();
    let mut workspaces = vec![];
    for conv in &data {
        let ws = format!("bench-recall-{}", name(&conv.sample_id));
        write(http, base, &ws, conv).await?;
        workspaces.push(ws);
    }
    let turns: usize = data.iter().map(|c| c.turns().count()).sum();
    eprintln!(
        "recall: {} conversations, {turns} turns written in {:.1} s; waiting for the queue",
        data.len(),
        started.elapsed().as_secs_f64()
    );
    let drained = Instant::now();
    for ws in &workspaces {
        drain(http, base, ws).await?;
    }
    eprintln!(
        "recall: queue drained {:.1} s after the writes",
        drained.elapsed().as_secs_f64()
    );

    let mut engram = Tally::default();
    let mut bm25 = Tally::default();
    let (mut asked, mut skipped, mut unknown) = (0u64, 0u64, 0u64);
    for (conv, ws) in data.iter().zip(&workspaces) {
        let ids: Vec<String> = conv.turns().map(|t| t.dia_id.clone()).collect();
        let known: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let index = Bm25::new(conv.turns().map(|t| t.text.as_str()));
        let url = format!("{base}/v3/workspaces/{ws}/search");
        for q in &conv.qa {
            let evidence = evidence_ids(q);
            if evidence.is_empty() {
                skipped += 1;
                continue;
            }
            unknown += evidence
                .iter()
                .filter(|e| !known.contains(e.as_str()))
                .count() as u64;
            asked += 1;

            let t = Instant::now();
            let ranked: Vec<String> = index
                .top(&q.question, LIMIT)
                .into_iter()
                .map(|i| ids[i].clone())
                .collect();
            bm25.add(q.category, &evidence, &ranked, t.elapsed());

            let t = Instant::now();
            match search(http, &url, &q.question).await {
                Ok(ranked) => engram.add(q.category, &evidence, &ranked, t.elapsed()),
                Err(e) => engram.error(q.category, format!("{e:#}")),
            }
        }
    }
    eprintln!(
        "recall: {asked} questions asked ({skipped} without evidence skipped, {unknown} evidence ids name no turn)"
    );

    let bm25_rows: HashMap<String, Row> = bm25.rows("bm25").into_iter().collect();
    let mut rows = vec![];
    for (label, mut row) in engram.rows("engram") {
        let base_row = bm25_rows.get(&label).context("a BM25 row per measure")?;
        row.vs_floor = Some(row.throughput / base_row.throughput.max(1e-9));
        rows.push(row);
        rows.push(base_row.clone());
    }
    Ok(rows)
}

/// Writes one conversation: a workspace, one session per `session_N`, the turns in order.
async fn write(http: &reqwest::Client, base: &str, ws: &str, conv: &Conversation) -> Result<()> {
    let sessions = conv.sessions.iter().map(|(n, _)| format!("session_{n}"));
    prepare(http, base, ws, sessions).await?;
    for (n, turns) in &conv.sessions {
        let url = format!("{base}/v3/workspaces/{ws}/sessions/session_{n}/messages");
        for chunk in turns.chunks(BATCH) {
            let messages: Vec<Value> = chunk
                .iter()
                .map(|t| {
                    json!({
                        "peer_id": name(&t.speaker),
                        "content": t.text,
                        "metadata": {"dia_id": t.dia_id},
                    })
                })
                .collect();
            let r = http
                .post(&url)
                .json(&json!({ "messages": messages }))
                .send()
                .await?;
            let status = r.status();
            if !status.is_success() {
                bail!(
                    "writing {ws} session_{n}: {status}: {}",
                    r.text().await.unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// Waits until the workspace's queue has no pending or in-progress work (its messages
/// have their vectors).
async fn drain(http: &reqwest::Client, base: &str, ws: &str) -> Result<()> {
    let url = format!("{base}/v3/workspaces/{ws}/queue/status");
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut last_report = Instant::now();
    loop {
        let status: Value = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let count = |k: &str| status.get(k).and_then(Value::as_i64).unwrap_or(0);
        let open = count("pending_work_units") + count("in_progress_work_units");
        if open == 0 {
            let failed = count("failed_work_units");
            if failed > 0 {
                eprintln!("recall: warning: {ws} has {failed} failed work units");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{ws}: queue still has {open} open work units after an hour");
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            eprintln!("recall: {ws}: {open} work units open");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `dia_id`s of one search's hits, best first.
async fn search(http: &reqwest::Client, url: &str, query: &str) -> Result<Vec<String>> {
    let r = http
        .post(url)
        .json(&json!({"query": query, "limit": LIMIT}))
        .send()
        .await?;
    let status = r.status();
    if !status.is_success() {
        bail!("{status}: {}", r.text().await.unwrap_or_default());
    }
    let hits: Vec<Value> = r.json().await?;
    Ok(hits
        .iter()
        .filter_map(|m| m.pointer("/metadata/dia_id").and_then(Value::as_str))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recall_counts_evidence_within_the_top_k() {
        let evidence = ids(&["D1:2", "D3:4"]);
        let ranked = ids(&["D9:9", "D1:2", "D2:2", "D2:3", "D2:4", "D3:4"]);
        assert_eq!(recall_at(&evidence, &ranked, 1), 0.0);
        assert_eq!(recall_at(&evidence, &ranked, 5), 0.5);
        assert_eq!(recall_at(&evidence, &ranked, 10), 1.0);
        assert_eq!(recall_at(&evidence, &[], 10), 0.0);

        let q = Question {
            question: "q".into(),
            evidence: ids(&["D8:6; D9:17", "D8:6"]),
            category: 1,
        };
        assert_eq!(evidence_ids(&q), ids(&["D8:6", "D9:17"]));
    }

    #[test]
    fn tally_averages_per_question_and_category() {
        let mut t = Tally::default();
        let d = Duration::from_millis(1);
        t.add(1, &ids(&["a"]), &ids(&["a"]), d);
        t.add(
            2,
            &ids(&["a", "b"]),
            &ids(&["x", "x", "x", "x", "x", "b"]),
            d,
        );
        let rows: HashMap<String, Row> = t.rows("x").into_iter().collect();
        assert_eq!(rows["recall@5"].throughput, 0.5);
        assert_eq!(rows["recall@10"].throughput, 0.75);
        assert_eq!(rows["recall@10 cat 2"].throughput, 0.5);
        assert_eq!(rows["recall@5 cat 1"].requests, 1);
        assert_eq!(rows["recall@5"].requests, 2);
    }

    #[test]
    fn bm25_ranks_the_rare_term_first() {
        let docs = [
            "the cat sat on the mat",
            "the dog sat on the log",
            "the cat and the dog",
            "a zebra stood on the big green mat by the dog",
        ];
        let index = Bm25::new(docs);
        // "zebra" is in one document, "cat" in two shorter ones: the rare term wins.
        assert_eq!(index.top("Which cat saw a ZEBRA?", 10)[0], 3);
        assert_eq!(index.top("cat zebra", 10), vec![3, 2, 0]);
        assert_eq!(index.top("zebra", 10), vec![3]);
        // "cat" is in two documents; the shorter one wins.
        assert_eq!(index.top("cat", 10), vec![2, 0]);
        // No query term in any document: nothing is returned.
        assert!(index.top("giraffe", 10).is_empty());
        assert_eq!(index.top("the mat", 1).len(), 1);
        assert_eq!(
            tokens("It's 7 May, 2023!"),
            ids(&["it", "s", "7", "may", "2023"])
        );
    }

    #[test]
    fn parses_locomo_sessions_in_order() {
        let json = r#"[{
            "sample_id": "conv-1",
            "conversation": {
                "speaker_a": "Ann", "speaker_b": "Bo Li",
                "session_10_date_time": "1:00 pm on 8 May, 2023",
                "session_10": [{"speaker": "Bo Li", "dia_id": "D10:1", "text": "late"}],
                "session_2_date_time": "1:56 pm on 8 May, 2023",
                "session_2": [
                    {"speaker": "Ann", "dia_id": "D2:1", "text": "hi",
                     "img_url": ["x"], "blip_caption": "a photo of a dog"},
                    {"speaker": "Bo Li", "dia_id": "D2:2", "text": "hello"}
                ],
                "session_11_date_time": "no turns"
            },
            "qa": [
                {"question": "Who?", "answer": 2022, "evidence": ["D2:1"], "category": 2},
                {"question": "Never?", "adversarial_answer": "x", "evidence": [], "category": 5}
            ],
            "event_summary": {}
        }]"#;
        let convs = parse(json).unwrap();
        assert_eq!(convs.len(), 1);
        let c = &convs[0];
        assert_eq!(c.sample_id, "conv-1");
        let order: Vec<u32> = c.sessions.iter().map(|(n, _)| *n).collect();
        assert_eq!(order, vec![2, 10]);
        let turns: Vec<&str> = c.turns().map(|t| t.dia_id.as_str()).collect();
        assert_eq!(turns, vec!["D2:1", "D2:2", "D10:1"]);
        assert_eq!(c.sessions[1].1[0].speaker, "Bo Li");
        assert_eq!(name("Bo Li"), "Bo_Li");
        assert_eq!(c.qa.len(), 2);
        assert_eq!((c.qa[0].category, c.qa[1].category), (2, 5));
        assert!(c.qa[1].evidence.is_empty());
    }
}
