//! The physical floor: the same rows written (or deleted) straight into the same schema
//! with the same commit size and the same durability, but without HTTP, JSON, validation,
//! token counting or the queue. Engram's throughput divided by the floor's is the share of
//! the machine's storage capacity engram delivers.
//!
//! The schema is whatever engram's own stores migrate to (the stores run their migrations
//! on the floor database before the floor touches it), so the floor pays for the same
//! tables, indexes and full-text triggers as engram. Deliberately left out: the session's
//! `last_seq` counter and the peer upserts of a write, and the job lease, receipt update
//! and WAL checkpoint of a purge. Sequence numbers are assigned client-side here, so the
//! floor is the cheapest way to make these rows durable (or gone), not a re-implementation
//! of engram.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, params};

use crate::ingest::{BATCH, content};
use crate::report::{Row, Samples};

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Roughly what o200k gives English prose; only stored, never compared.
fn token_estimate(s: &str) -> i64 {
    (s.len() / 4) as i64
}

/// The rows a purge transaction removes: `ENGRAM_PURGE_BATCH` when set (the engram the
/// bench starts inherits it too), else engram's default.
fn purge_batch() -> i64 {
    std::env::var("ENGRAM_PURGE_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(engram_core::queue::PURGE_BATCH)
}

/// One session receiving floor rows, numbered after `seq`.
struct Target {
    ws_id: i64,
    session_id: i64,
    name: String,
    seq: i64,
}

/// Each message's metadata JSON, by message number.
type Metadata = fn(u64) -> String;

fn no_metadata(_: u64) -> String {
    "{}".to_string()
}

pub enum Floor {
    Sqlite(PathBuf),
    Postgres(sqlx::PgPool),
}

impl Floor {
    /// A fresh SQLite file migrated by engram's own store.
    pub fn sqlite(path: PathBuf) -> Result<Floor> {
        migrate_sqlite(&path)?;
        Ok(Floor::Sqlite(path))
    }

    /// A fresh PostgreSQL database (already created, empty) migrated by engram's own
    /// store; the pool is sized for the largest client count so each client has its own
    /// connection.
    pub async fn postgres(url: &str, max_clients: usize) -> Result<Floor> {
        let store = engram_store_postgres::PgStore::connect(url)
            .await
            .context("migrate PostgreSQL floor")?;
        store.close().await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_clients as u32)
            .connect(url)
            .await
            .context("connect floor database")?;
        Ok(Floor::Postgres(pool))
    }

    /// Writes `batches` batches for `clients` sessions in workspace `ws`.
    pub async fn ingest(&self, ws: &str, clients: usize, batches: u64) -> Result<Row> {
        match self {
            Floor::Sqlite(path) => {
                let (path, ws) = (path.clone(), ws.to_string());
                tokio::task::spawn_blocking(move || sqlite_ingest(&path, &ws, clients, batches))
                    .await?
            }
            Floor::Postgres(pool) => pg_ingest(pool, ws, clients, batches).await,
        }
    }

    /// Fills one session of workspace `ws` with `messages` messages tagged like the HTTP
    /// delete scenario's (not timed), then deletes them as engram's purge does: plain
    /// `DELETE`s of one purge batch per transaction, timed until the last row is gone.
    /// SQLite gets a fresh file each time: what FTS5's secure-delete costs depends on what
    /// the index held before (a 1k purge in the same file made a later 10k one ~3x slower).
    pub async fn purge(&self, ws: &str, messages: u64, tag: Metadata) -> Result<Row> {
        match self {
            Floor::Sqlite(path) => {
                let path = path.with_file_name(format!("{ws}.db"));
                migrate_sqlite(&path)?;
                let ws = ws.to_string();
                tokio::task::spawn_blocking(move || sqlite_purge(&path, &ws, messages, tag)).await?
            }
            Floor::Postgres(pool) => pg_purge(pool, ws, messages, tag).await,
        }
    }
}

/// Creates the file with engram's schema by opening engram's own store on it once.
fn migrate_sqlite(path: &std::path::Path) -> Result<()> {
    drop(engram_store_sqlite::SqliteStore::open(path).context("migrate SQLite floor")?);
    Ok(())
}

fn open_sqlite(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // The pragmas engram's store sets on its writer connection.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 10000; PRAGMA secure_delete = ON; PRAGMA cache_size = -16000;",
    )?;
    Ok(conn)
}

fn sqlite_targets(conn: &Connection, ws: &str, sessions: usize) -> Result<Vec<Target>> {
    let now = now_micros();
    conn.execute(
        "INSERT INTO workspaces (name, created_at) VALUES (?1, ?2)",
        params![ws, now],
    )?;
    let ws_id = conn.last_insert_rowid();
    (0..sessions)
        .map(|c| {
            let name = format!("s{c}");
            conn.execute(
                "INSERT INTO sessions (workspace_id, name, created_at) VALUES (?1, ?2, ?3)",
                params![ws_id, name, now],
            )?;
            Ok(Target {
                ws_id,
                session_id: conn.last_insert_rowid(),
                name,
                seq: 0,
            })
        })
        .collect()
}

/// Inserts messages `first..first + n` into `t`, inside the caller's transaction.
fn sqlite_insert(
    conn: &Connection,
    t: &mut Target,
    first: u64,
    n: u64,
    metadata: Metadata,
) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (workspace_id, session_id, public_id, session_name, peer_name, content, metadata, token_count, seq_in_session, created_at) \
         VALUES (?1, ?2, ?3, ?4, 'p', ?5, ?6, ?7, ?8, ?9)",
    )?;
    for i in first..first + n {
        let text = content(i);
        t.seq += 1;
        insert.execute(params![
            t.ws_id,
            t.session_id,
            nanoid::nanoid!(),
            t.name,
            text,
            metadata(i),
            token_estimate(&text),
            t.seq,
            now_micros()
        ])?;
    }
    Ok(())
}

/// One thread, because SQLite has one writer: what concurrent HTTP clients would get at
/// best is this single writer never waiting. Batches go round-robin over the sessions
/// so the unique index sees the same interleaving concurrent clients produce.
fn sqlite_ingest(path: &std::path::Path, ws: &str, clients: usize, batches: u64) -> Result<Row> {
    let mut conn = open_sqlite(path)?;
    let mut targets = sqlite_targets(&conn, ws, clients)?;
    let mut samples = Samples::default();
    let started = Instant::now();
    for b in 0..batches {
        let t = Instant::now();
        let tx = conn.transaction()?;
        let target = &mut targets[(b % clients as u64) as usize];
        sqlite_insert(&tx, target, b * BATCH as u64, BATCH as u64, no_metadata)?;
        tx.commit()?;
        samples.latencies.push(t.elapsed());
    }
    let wall = started.elapsed();
    Ok(samples.row(
        "ingest floor (sqlite direct)",
        1,
        batches * BATCH as u64,
        "msg/s",
        wall,
    ))
}

fn sqlite_purge(path: &std::path::Path, ws: &str, messages: u64, tag: Metadata) -> Result<Row> {
    let mut conn = open_sqlite(path)?;
    let mut target = sqlite_targets(&conn, ws, 1)?.remove(0);
    // Batches of the HTTP seed's size: the full-text index gets the same segment layout,
    // and the cost of deleting from it depends on that layout.
    for first in (0..messages).step_by(BATCH) {
        let tx = conn.transaction()?;
        let n = (BATCH as u64).min(messages - first);
        sqlite_insert(&tx, &mut target, first, n, tag)?;
        tx.commit()?;
    }
    let batch = purge_batch();
    let mut samples = Samples::default();
    let mut left = messages;
    let started = Instant::now();
    while left > 0 {
        let t = Instant::now();
        let tx = conn.transaction()?;
        let removed = tx
            .prepare_cached(
                "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE workspace_id = ?1 AND session_id = ?2 LIMIT ?3)",
            )?
            .execute(params![target.ws_id, target.session_id, batch])?;
        tx.commit()?;
        samples.latencies.push(t.elapsed());
        if removed == 0 {
            bail!("purge floor: {left} rows missing");
        }
        left = left.saturating_sub(removed as u64);
    }
    let wall = started.elapsed();
    Ok(samples.row("purge floor (sqlite direct)", 1, messages, "msg/s", wall))
}

async fn pg_targets(pool: &sqlx::PgPool, ws: &str, sessions: usize) -> Result<Vec<Target>> {
    let now = now_micros();
    let ws_id: i64 = sqlx::query_scalar(
        "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) RETURNING id",
    )
    .bind(ws)
    .bind(now)
    .fetch_one(pool)
    .await?;
    let mut targets = vec![];
    for c in 0..sessions {
        let name = format!("s{c}");
        let session_id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (workspace_id, name, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(ws_id)
        .bind(&name)
        .bind(now)
        .fetch_one(pool)
        .await?;
        targets.push(Target {
            ws_id,
            session_id,
            name,
            seq: 0,
        });
    }
    Ok(targets)
}

/// Inserts messages `first..first + n` into `t` with one multi-row
/// `INSERT ... SELECT FROM UNNEST` (the shape engram uses), in the caller's transaction.
async fn pg_insert(
    conn: &mut sqlx::PgConnection,
    t: &mut Target,
    first: u64,
    n: u64,
    metadata: Metadata,
) -> Result<()> {
    let texts: Vec<String> = (first..first + n).map(content).collect();
    let ids: Vec<String> = texts.iter().map(|_| nanoid::nanoid!()).collect();
    let tokens: Vec<i64> = texts.iter().map(|t| token_estimate(t)).collect();
    let metadata: Vec<String> = (first..first + n).map(metadata).collect();
    let seqs: Vec<i64> = (t.seq + 1..=t.seq + n as i64).collect();
    t.seq += n as i64;
    let created = vec![now_micros(); n as usize];
    sqlx::query(
        "INSERT INTO messages (workspace_id, session_id, session_name, public_id, peer_name, content, metadata, token_count, seq_in_session, created_at) \
         SELECT $1, $2, $3, u.public_id, 'p', u.content, u.metadata::jsonb, u.token_count, u.seq, u.created_at \
         FROM UNNEST($4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[]) \
           AS u (public_id, content, metadata, token_count, seq, created_at)",
    )
    .bind(t.ws_id)
    .bind(t.session_id)
    .bind(&t.name)
    .bind(&ids)
    .bind(&texts)
    .bind(&metadata)
    .bind(&tokens)
    .bind(&seqs)
    .bind(&created)
    .execute(conn)
    .await?;
    Ok(())
}

/// One connection per client, each appending to its own session with one transaction
/// per batch.
async fn pg_ingest(pool: &sqlx::PgPool, ws: &str, clients: usize, batches: u64) -> Result<Row> {
    let targets = pg_targets(pool, ws, clients).await?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|mut target| {
            let (pool, next) = (pool.clone(), next.clone());
            tokio::spawn(async move {
                let mut conn = pool.acquire().await?;
                let mut samples = Samples::default();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let t = Instant::now();
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let first = b * BATCH as u64;
                    pg_insert(&mut tx, &mut target, first, BATCH as u64, no_metadata).await?;
                    tx.commit().await?;
                    samples.latencies.push(t.elapsed());
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await??);
    }
    let wall = started.elapsed();
    Ok(all.row(
        "ingest floor (pg direct)",
        clients,
        batches * BATCH as u64,
        "msg/s",
        wall,
    ))
}

async fn pg_purge(pool: &sqlx::PgPool, ws: &str, messages: u64, tag: Metadata) -> Result<Row> {
    let mut target = pg_targets(pool, ws, 1).await?.remove(0);
    let mut conn = pool.acquire().await?;
    for first in (0..messages).step_by(BATCH) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let n = (BATCH as u64).min(messages - first);
        pg_insert(&mut tx, &mut target, first, n, tag).await?;
        tx.commit().await?;
    }
    let batch = purge_batch();
    let mut samples = Samples::default();
    let mut left = messages;
    let started = Instant::now();
    while left > 0 {
        let t = Instant::now();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let removed = sqlx::query(
            "DELETE FROM messages WHERE (workspace_id, id) IN \
             (SELECT workspace_id, id FROM messages WHERE workspace_id = $1 AND session_id = $2 LIMIT $3)",
        )
        .bind(target.ws_id)
        .bind(target.session_id)
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        samples.latencies.push(t.elapsed());
        if removed == 0 {
            bail!("purge floor: {left} rows missing");
        }
        left = left.saturating_sub(removed);
    }
    let wall = started.elapsed();
    Ok(samples.row("purge floor (pg direct)", 1, messages, "msg/s", wall))
}
