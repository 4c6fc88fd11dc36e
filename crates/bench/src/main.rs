//! `engram-bench`: one workload, runnable against an engram it starts itself (SQLite or
//! PostgreSQL, on a fresh store) or against any running Honcho-compatible server, so the
//! numbers of different servers on the same machine are comparable.

mod delete;
mod embed;
mod floor;
mod ingest;
mod reads;
mod recall;
mod report;
mod server;
mod soak;
mod vectors;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::floor::Floor;
use crate::report::{Report, Resources};
use crate::server::{Engram, PgDatabases};

#[derive(Parser, Debug)]
#[command(
    name = "engram-bench",
    about = "Benchmark engram (or any Honcho v3 server): ingest, reads, resources, deletes, soak, recall"
)]
struct Cli {
    /// Start engram on a fresh temporary store of this engine.
    #[arg(long, value_enum, default_value = "sqlite")]
    engine: Engine,
    /// PostgreSQL server for `--engine postgres` (a fresh database is created and dropped).
    #[arg(long)]
    database_url: Option<String>,
    /// Benchmark an already running server instead (no floor, no RSS, no startup time).
    #[arg(long)]
    url: Option<String>,
    /// The engram binary to start [default: `engram` next to this binary].
    #[arg(long)]
    engram_bin: Option<PathBuf>,
    /// Scenarios to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ingest,reads,resources"
    )]
    scenarios: Vec<Scenario>,
    /// Batches of 100 messages written per client count (shared among its clients).
    #[arg(long, default_value_t = 1000)]
    ingest_batches: u64,
    /// Concurrent ingest clients, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Messages stored in the session before the read scenario.
    #[arg(long, default_value_t = 100_000)]
    read_messages: u64,
    /// Requests per read operation.
    #[arg(long, default_value_t = 2000)]
    read_requests: u64,
    /// Skip the ingest and purge floors (a SQLite purge floor of a million messages runs
    /// FTS5's secure-delete for tens of minutes).
    #[arg(long)]
    no_floor: bool,
    /// Give every message the reads scenario stored a vector and restart engram with the
    /// built-in model, so searches are hybrid (own server only; needs scripts/fetch-model.sh).
    #[arg(long)]
    vectors: bool,
    /// Concurrent read clients.
    #[arg(long, default_value_t = 16)]
    read_clients: usize,
    /// Read operations to measure, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "get-or-create,list-page,context,filtered-list,search-rare,search-common"
    )]
    read_ops: Vec<reads::Op>,
    /// Session sizes (messages) for the delete scenario, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    delete_sizes: Vec<u64>,
    /// Chat messages embedded by the `embed` scenario (built-in model, in process).
    #[arg(long, default_value_t = 2000)]
    embed_messages: u64,
    /// Messages per embedding batch.
    #[arg(long, default_value_t = 32)]
    embed_batch: usize,
    /// Single queries embedded by the `embed` scenario.
    #[arg(long, default_value_t = 200)]
    embed_queries: u64,
    /// Length of the soak's load, in seconds.
    #[arg(long, default_value_t = 600)]
    soak_seconds: u64,
    /// Concurrent soak clients.
    #[arg(long, default_value_t = 16)]
    soak_clients: usize,
    /// LoCoMo's development half for the `recall` scenario (read at run time, never
    /// copied into the repository).
    #[arg(long, env = "ENGRAM_BENCH_LOCOMO", default_value = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/locomo-dev/locomo-dev.json"
    ))]
    locomo: PathBuf,
    /// Only the first N LoCoMo conversations in the `recall` scenario [default: all].
    #[arg(long)]
    recall_limit: Option<usize>,
    /// `ENGRAM_EMBEDDINGS` of the engram the `recall` scenario starts (`off`: keyword only).
    #[arg(long, default_value = "local")]
    recall_embeddings: String,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Ingest,
    Reads,
    Resources,
    /// Embedding throughput of the built-in model (needs scripts/fetch-model.sh).
    Embed,
    /// DELETE answer time and purge rate for sessions of `--delete-sizes` messages.
    Delete,
    /// Mixed writes, reads and deletes for `--soak-seconds`; fails on errors or lost writes.
    Soak,
    /// LoCoMo evidence turns found by the search route in the top 5 and 10, beside BM25
    /// (own engram: a fresh store of its own with the built-in model).
    Recall,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.clients.contains(&0) || cli.read_clients == 0 || cli.soak_clients == 0 {
        bail!("client counts must be at least 1");
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        // Enough idle connections that 64 clients never reconnect between requests.
        .pool_max_idle_per_host(256)
        .build()?;
    let tmp = tempfile::Builder::new().prefix("engram-bench-").tempdir()?;
    let mut pg = None;
    let result = run(&cli, &http, tmp.path(), &mut pg).await;
    if let Some(dbs) = pg.as_mut() {
        let dbs: &mut PgDatabases = dbs;
        if let Err(e) = dbs.drop_all().await {
            eprintln!("warning: could not drop bench databases: {e:#}");
        }
    }
    let report = result?;
    report::print(&report);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("write {}", path.display()))?;
        println!("\nJSON written to {}", path.display());
    }
    if let Some(problems) = report.soak.as_ref().map(report::Soak::problems)
        && !problems.is_empty()
    {
        bail!("soak failed: {}", problems.join(", "));
    }
    Ok(())
}

async fn run(
    cli: &Cli,
    http: &reqwest::Client,
    tmp: &std::path::Path,
    pg: &mut Option<PgDatabases>,
) -> Result<Report> {
    let wants = |s: Scenario| cli.scenarios.contains(&s);
    let mut rows = vec![];
    let mut resources = Resources::default();

    // In process, before any server starts, so nothing else competes for the cores.
    if wants(Scenario::Embed) {
        eprintln!(
            "embed: {} messages, batches of {}",
            cli.embed_messages, cli.embed_batch
        );
        rows.extend(embed::run(cli.embed_messages, cli.embed_batch, cli.embed_queries).await?);
        if cli.scenarios.iter().all(|s| *s == Scenario::Embed) {
            return Ok(Report {
                target: "engram-embed all-MiniLM-L6-v2 (in process)".to_string(),
                engine: None,
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                command: std::env::args().collect::<Vec<_>>().join(" "),
                rows,
                resources: None,
                soak: None,
            });
        }
    }

    // On an engram of its own (fresh store, embeddings on), so the model's background work
    // never overlaps the other scenarios and their messages are not embedded.
    if wants(Scenario::Recall) {
        rows.extend(recall(cli, http, tmp, pg).await?);
        let own_kinds = [Scenario::Embed, Scenario::Recall];
        if cli.scenarios.iter().all(|s| own_kinds.contains(s)) {
            return Ok(Report {
                target: cli.url.clone().unwrap_or_else(|| {
                    format!(
                        "engram (own, {}, ENGRAM_EMBEDDINGS={})",
                        engine_name(cli.engine),
                        cli.recall_embeddings
                    )
                }),
                engine: cli.url.is_none().then(|| engine_name(cli.engine)),
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                command: std::env::args().collect::<Vec<_>>().join(" "),
                rows,
                resources: None,
                soak: None,
            });
        }
    }

    // Own server: spawn it (and prepare the floor store) on fresh storage.
    let mut engram = None;
    let mut floor = None;
    let mut base = match &cli.url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let bin = engram_bin(cli)?;
            let database_url = match cli.engine {
                Engine::Sqlite => None,
                Engine::Postgres => Some(pg_databases(cli, pg)?.create("").await?),
            };
            let data_dir = tmp.join("engram-data");
            std::fs::create_dir_all(&data_dir)?;
            let (e, startup) =
                Engram::start(http, &bin, &data_dir, database_url.as_deref()).await?;
            resources.startup_ms = Some(startup.as_secs_f64() * 1e3);
            // Let lazily initialized state (tokenizer tables, pools) settle before "idle".
            tokio::time::sleep(Duration::from_millis(500)).await;
            resources.rss_idle_mb = e.rss_mb().map(|(rss, _)| rss);
            eprintln!(
                "engram up at {} in {:.0} ms (store: {})",
                e.base,
                startup.as_secs_f64() * 1e3,
                database_url.as_deref().unwrap_or("sqlite, fresh temp dir")
            );
            if !cli.no_floor && (wants(Scenario::Ingest) || wants(Scenario::Delete)) {
                let max_clients = cli.clients.iter().copied().max().unwrap_or(1);
                floor = Some(match (cli.engine, pg.as_mut()) {
                    (Engine::Postgres, Some(dbs)) => {
                        Floor::postgres(&dbs.create("_floor").await?, max_clients).await?
                    }
                    _ => Floor::sqlite(tmp.join("floor.db"))?,
                });
            }
            let base = e.base.clone();
            engram = Some(e);
            base
        }
    };

    if wants(Scenario::Soak) {
        soak::require_loopback(&base)?;
    }

    // One untimed write first: engram loads its tokenizer on first use, and that one-off
    // cost belongs in the resources section, not in the steady-state ingest percentiles.
    let first = warm_up(http, &base).await?;
    if engram.is_some() {
        resources.first_write_ms = Some(first.as_secs_f64() * 1e3);
    }

    if wants(Scenario::Ingest) {
        for &clients in &cli.clients {
            eprintln!(
                "ingest: {clients} clients, {} batches of 100",
                cli.ingest_batches
            );
            let ws = format!("bench-ingest-{clients}");
            let (mut row, _) = ingest::run(http, &base, &ws, clients, cli.ingest_batches).await?;
            if let Some(f) = &floor {
                eprintln!("ingest floor: {clients} clients");
                let floor_row = f.ingest(&ws, clients, cli.ingest_batches).await?;
                row.vs_floor = Some(row.throughput / floor_row.throughput.max(1e-9));
                rows.push(row);
                rows.push(floor_row);
            } else {
                rows.push(row);
            }
        }
    }

    if wants(Scenario::Reads) {
        eprintln!("reads: seeding {} messages", cli.read_messages);
        let stored = reads::seed(http, &base, "bench-reads", cli.read_messages).await?;
        if let Some(e) = engram.as_mut() {
            if cli.vectors {
                let embedder = engram_embed::load_default()?
                    .context("--vectors needs the built-in model (scripts/fetch-model.sh)")?;
                e.stop()?;
                eprintln!("vectors: one per stored message");
                vectors::seed(e.data_dir(), e.database_url(), &embedder).await?;
                e.embeddings = "local".into();
                e.restart(http).await?;
                base = e.base.clone();
            }
            if let Some(url) = e.database_url() {
                server::analyze(url).await?;
            }
        } else if cli.vectors {
            bail!("--vectors needs an engram the bench starts itself");
        }
        eprintln!("reads: {} requests per operation", cli.read_requests);
        let mut measured = reads::run(
            http,
            &base,
            "bench-reads",
            stored,
            cli.read_clients,
            cli.read_requests,
            &cli.read_ops,
        )
        .await?;
        if cli.vectors {
            for row in measured
                .iter_mut()
                .filter(|r| r.scenario.starts_with("search"))
            {
                row.scenario = format!("hybrid {}", row.scenario);
            }
        }
        rows.extend(measured);
    }

    if wants(Scenario::Delete) {
        rows.extend(delete::run(http, &base, &cli.delete_sizes, floor.as_ref()).await?);
    }

    let mut soak = None;
    if wants(Scenario::Soak) {
        eprintln!(
            "soak: {} clients for {} s",
            cli.soak_clients, cli.soak_seconds
        );
        let rss = || engram.as_ref().and_then(Engram::rss_mb).map(|(rss, _)| rss);
        let (soak_rows, summary) =
            soak::run(http, &base, cli.soak_seconds, cli.soak_clients, &rss).await?;
        rows.extend(soak_rows);
        soak = Some(summary);
    }

    let mut engine = None;
    if let Some(mut e) = engram {
        engine = Some(format!("{:?}", cli.engine).to_lowercase());
        if let Some((rss, peak)) = e.rss_mb() {
            resources.rss_after_mb = Some(rss);
            resources.rss_peak_mb = Some(peak);
        }
        if wants(Scenario::Resources) {
            eprintln!("resources: restarting on the filled store");
            let took = e.restart(http).await?;
            resources.restart_ms = Some(took.as_secs_f64() * 1e3);
        }
        e.stop()?;
    }
    let own = cli.url.is_none();
    Ok(Report {
        target: cli.url.clone().unwrap_or_else(|| {
            format!(
                "engram (own, {})",
                format!("{:?}", cli.engine).to_lowercase()
            )
        }),
        engine,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        rows,
        resources: (own && wants(Scenario::Resources)).then_some(resources),
        soak,
    })
}

fn engine_name(engine: Engine) -> String {
    format!("{engine:?}").to_lowercase()
}

fn engram_bin(cli: &Cli) -> Result<PathBuf> {
    Ok(match &cli.engram_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("bench binary has no directory")?
            .join("engram"),
    })
}

/// The bench's PostgreSQL databases (`--engine postgres`), created on first use.
fn pg_databases<'a>(cli: &Cli, pg: &'a mut Option<PgDatabases>) -> Result<&'a mut PgDatabases> {
    let admin = cli
        .database_url
        .as_deref()
        .context("--engine postgres needs --database-url")?;
    Ok(pg.get_or_insert_with(|| PgDatabases::new(admin)))
}

/// The `recall` scenario against `--url`, or against an engram it starts on a fresh store.
async fn recall(
    cli: &Cli,
    http: &reqwest::Client,
    tmp: &std::path::Path,
    pg: &mut Option<PgDatabases>,
) -> Result<Vec<report::Row>> {
    if let Some(url) = &cli.url {
        eprintln!("recall: against {url}");
        return recall::run(
            http,
            url.trim_end_matches('/'),
            &cli.locomo,
            cli.recall_limit,
        )
        .await;
    }
    if cli.recall_embeddings == "local" {
        let dir = engram_embed::default_model_dir()
            .context("recall: no model directory: set ENGRAM_MODEL_DIR")?;
        if !dir.join("model.safetensors").is_file() {
            bail!(
                "recall: no all-MiniLM-L6-v2 in {}: run scripts/fetch-model.sh first (or pass --recall-embeddings off)",
                dir.display()
            );
        }
    }
    let database_url = match cli.engine {
        Engine::Sqlite => None,
        Engine::Postgres => Some(pg_databases(cli, pg)?.create("_recall").await?),
    };
    let data_dir = tmp.join("engram-recall");
    std::fs::create_dir_all(&data_dir)?;
    let (mut e, _) = Engram::start_with(
        http,
        &engram_bin(cli)?,
        &data_dir,
        database_url.as_deref(),
        &cli.recall_embeddings,
    )
    .await?;
    eprintln!(
        "recall: engram up at {} (ENGRAM_EMBEDDINGS={}, store: {})",
        e.base,
        cli.recall_embeddings,
        database_url.as_deref().unwrap_or("sqlite, fresh temp dir")
    );
    let rows = recall::run(http, &e.base, &cli.locomo, cli.recall_limit).await;
    e.stop()?;
    rows
}

async fn warm_up(http: &reqwest::Client, base: &str) -> Result<Duration> {
    ingest::prepare(http, base, "bench-warmup", std::iter::once("w".to_string())).await?;
    let mut samples = report::Samples::default();
    let req = http
        .post(format!(
            "{base}/v3/workspaces/bench-warmup/sessions/w/messages"
        ))
        .header("content-type", "application/json")
        .body(ingest::batch_body(0, ingest::BATCH as u64, |_| None));
    ingest::timed(&mut samples, req).await;
    if let Some(e) = samples.first_errors.first() {
        bail!("warm-up write failed: {e}");
    }
    Ok(samples.latencies[0])
}
