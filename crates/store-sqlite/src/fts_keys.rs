//! The full-text index's page keys, kept free of deleted words.
//!
//! FTS5 finds a term's leaf page through `messages_fts_idx`, one row per leaf page that
//! starts a term: its key is the shortest prefix of the page's first term that sorts
//! after the previous page's last term. `secure-delete` removes a deleted term from the
//! leaf pages, and removes the page's key when no term is left on the page, but when
//! the deleted term was the first of a page that still holds other terms the key stays:
//! up to a whole deleted word, readable in the database file. (FTS5's own merges write
//! fresh keys, so this is the one place deleted text outlives a purge.)
//!
//! A key K of page P only has to satisfy last(P - 1) < K <= first(P), so a stale key is
//! replaced by the page's current first term itself, a live term. Only keys that are a
//! prefix of a term the purge just removed can have gone stale, so a purge step checks
//! those alone. The page layout read here (and checked by FTS5's `integrity-check`) is
//! FTS5's: a 4-byte header whose bytes 2..4 are the size of the page body, then the body,
//! then a footer of varints whose first is the offset of the page's first term, stored
//! whole as a varint length and its bytes.

use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::db_err;

/// A leaf page's rowid in `messages_fts_data`: the segment id above the page number
/// (FTS5's `FTS5_SEGMENT_ROWID`).
pub(crate) fn leaf_rowid(segid: i64, pgno: i64) -> i64 {
    (segid << 37) + pgno
}

/// The terms of the given messages as the index stores them (main-index terms carry a
/// leading `0`), read through a scratch FTS5 table with the index's own tokenizer.
/// The scratch table lives in the writer's memory-only temp database.
pub fn terms_of(conn: &Connection, ids_json: &str) -> Result<Vec<Vec<u8>>> {
    conn.execute_batch(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.purge_terms USING fts5(\
         content, content = '', detail = none, columnsize = 0, tokenize = 'porter unicode61'); \
         CREATE VIRTUAL TABLE IF NOT EXISTS temp.purge_vocab USING fts5vocab(temp, purge_terms, 'row');",
    )
    .map_err(db_err)?;
    conn.prepare_cached(
        "INSERT INTO temp.purge_terms (rowid, content) \
         SELECT id, content FROM messages WHERE id IN (SELECT value FROM json_each(?1))",
    )
    .map_err(db_err)?
    .execute([ids_json])
    .map_err(db_err)?;
    let terms = conn
        .prepare_cached("SELECT term FROM temp.purge_vocab ORDER BY term")
        .map_err(db_err)?
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(db_err)?
        .map(|t| t.map(|t| [b"0", t.as_bytes()].concat()))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    conn.prepare_cached("INSERT INTO temp.purge_terms (purge_terms) VALUES ('delete-all')")
        .map_err(db_err)?
        .execute([])
        .map_err(db_err)?;
    Ok(terms)
}

/// Replaces every page key that is a prefix of one of `removed` (sorted) but no longer
/// of its page's first term; `None` checks every key. Returns how many were replaced
/// or, for pages a merge under way has dropped, removed.
pub fn repair(conn: &Connection, removed: Option<&[Vec<u8>]>) -> Result<usize> {
    // Pending deletes reach the pages only when FTS5 flushes them.
    conn.prepare_cached("INSERT INTO messages_fts (messages_fts) VALUES ('flush')")
        .map_err(db_err)?
        .execute([])
        .map_err(db_err)?;
    let suspects: Vec<(i64, Vec<u8>, i64)> = {
        let mut keys = conn
            .prepare_cached("SELECT segid, term, pgno FROM messages_fts_idx")
            .map_err(db_err)?;
        let rows = keys
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? >> 1)))
            .map_err(db_err)?;
        let mut suspects = Vec::new();
        for row in rows {
            let (segid, key, pgno): (i64, Vec<u8>, i64) = row.map_err(db_err)?;
            // A segment's first page has the empty key, which holds no text.
            if !key.is_empty() && removed.is_none_or(|terms| prefixes_one(&key, terms)) {
                suspects.push((segid, key, pgno));
            }
        }
        suspects
    };
    let mut replaced = 0;
    for (segid, key, pgno) in suspects {
        let page: Option<Vec<u8>> = conn
            .prepare_cached("SELECT block FROM messages_fts_data WHERE id = ?1")
            .map_err(db_err)?
            .query_row([leaf_rowid(segid, pgno)], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        let Some(page) = page else {
            // A merge under way already moved this page's terms out of the segment and
            // dropped the page; FTS5 skips keys below a segment's first page.
            conn.prepare_cached("DELETE FROM messages_fts_idx WHERE segid = ?1 AND term = ?2")
                .map_err(db_err)?
                .execute(params![segid, key])
                .map_err(db_err)?;
            replaced += 1;
            continue;
        };
        let first = first_term(&page).ok_or_else(|| {
            Error::Internal(format!(
                "full-text index page {pgno} of segment {segid} has a key but no term"
            ))
        })?;
        if first.starts_with(&key) {
            continue;
        }
        conn.prepare_cached("UPDATE messages_fts_idx SET term = ?3 WHERE segid = ?1 AND term = ?2")
            .map_err(db_err)?
            .execute(params![segid, key, first])
            .map_err(db_err)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Whether `key` is a prefix of one of the sorted `terms`.
fn prefixes_one(key: &[u8], terms: &[Vec<u8>]) -> bool {
    let at = terms.partition_point(|t| t.as_slice() < key);
    terms.get(at).is_some_and(|t| t.starts_with(key))
}

/// The first term of a leaf page, if the page holds one.
pub(crate) fn first_term(page: &[u8]) -> Option<&[u8]> {
    let body = usize::from(u16::from_be_bytes([*page.get(2)?, *page.get(3)?]));
    if page.len() <= body {
        return None;
    }
    let (offset, _) = varint(&page[body..])?;
    let (len, used) = varint(page.get(usize::try_from(offset).ok()?..)?)?;
    let start = usize::try_from(offset).ok()? + used;
    page.get(start..start + usize::try_from(len).ok()?)
}

/// SQLite's varint: big-endian groups of seven bits, the ninth byte whole.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        if i == 8 {
            return Some(((value << 8) | u64::from(b), 9));
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{first_term, prefixes_one, repair, varint};

    /// Keys of pages that an unfinished merge already dropped are removed, not read.
    #[test]
    fn survives_a_merge_under_way() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("engram.db")).unwrap();
        crate::migrate::run(&conn).unwrap();
        conn.execute_batch(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 0);
             INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
             INSERT INTO sessions (id, workspace_id, name, created_at) VALUES (1, 1, 's', 0);",
        )
        .unwrap();
        for segment in 0..4 {
            conn.execute_batch("BEGIN").unwrap();
            for i in 0..2000 {
                let n = segment * 2000 + i;
                conn.execute(
                    "INSERT INTO messages (workspace_id, session_id, public_id, session_name, peer_name, content, token_count, seq_in_session, created_at) \
                     VALUES (1, 1, ?1, 's', 'p', ?2, 1, ?1, 0)",
                    rusqlite::params![n, format!("word{n} other{}", n % 7)],
                )
                .unwrap();
            }
            conn.execute_batch("COMMIT").unwrap();
        }
        conn.execute_batch("INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', -5)")
            .unwrap();
        let dropped: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM messages_fts_idx i WHERE length(i.term) > 0 AND NOT EXISTS \
                 (SELECT 1 FROM messages_fts_data d WHERE d.id = (i.segid << 37) + (i.pgno >> 1))",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(dropped > 0, "the merge is under way");
        assert_eq!(repair(&conn, None).unwrap(), dropped as usize);
        conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
            .unwrap();
        let found: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'word5'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 1);
    }

    #[test]
    fn reads_varints() {
        assert_eq!(varint(&[0x05]), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00]), Some((128, 2)));
        assert_eq!(varint(&[0xff; 9]), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81]), None);
    }

    #[test]
    fn finds_the_first_term() {
        // Header (no rowid, body of 12 bytes), a rowid byte, the term "0ab", footer.
        let page = [0, 0, 0, 12, 7, 0, 0, 0, 3, b'0', b'a', b'b', 8];
        assert_eq!(first_term(&page), Some(&b"0ab"[..]));
        assert_eq!(first_term(&page[..12]), None, "no footer, no term");
    }

    #[test]
    fn matches_prefixes_of_sorted_terms() {
        let terms = vec![b"0apple".to_vec(), b"0quokka".to_vec()];
        assert!(prefixes_one(b"0qu", &terms));
        assert!(prefixes_one(b"0apple", &terms));
        assert!(!prefixes_one(b"0b", &terms));
        assert!(!prefixes_one(b"0quokkas", &terms));
    }
}
