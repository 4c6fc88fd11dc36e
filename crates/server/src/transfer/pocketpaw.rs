//! Reading a PocketPaw memory directory: one JSON array of messages per session file,
//! plus `_index.json` for titles, channels and creation times. Files PocketPaw itself
//! skips (`_*`, `*_compaction.json`) are skipped; a corrupt file is reported by name
//! and the rest still imported; a corrupt index only costs the custom titles, which are
//! then derived the way PocketPaw rebuilds them.

use std::fmt;
use std::path::Path;

use anyhow::Context;
use engram_core::Store;
use engram_core::model::{Json, NewMessage};
use engram_core::pocketpaw::{
    CHANNEL_KEY, DEFAULT_ROLE, ImportedSession, TITLE_KEY, USER_TITLE_KEY, auto_title, channel_of,
};
use engram_core::time::{self, Micros};
use engram_core::{ids, tokens};
use indicatif::ProgressBar;
use serde_json::Value;

/// What an import did, printed by `engram import pocketpaw`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// `(session, messages added, newly created)` for every session that changed.
    pub imported: Vec<(String, usize, bool)>,
    /// Sessions already fully present.
    pub unchanged: usize,
    /// `(file name, reason)` for files that could not be read.
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, added, created) in &self.imported {
            let what = if *created { "new session" } else { "appended" };
            writeln!(f, "imported {name}: {added} message(s) ({what})")?;
        }
        for (file, reason) in &self.problems {
            writeln!(f, "skipped {file}: {reason}")?;
        }
        let messages: usize = self.imported.iter().map(|(_, n, _)| n).sum();
        writeln!(
            f,
            "{} session(s) imported, {messages} message(s); {} already present; {} file(s) skipped",
            self.imported.len(),
            self.unchanged,
            self.problems.len()
        )
    }
}

/// Imports every session file of `dir` (or of `dir/sessions`) into `workspace`, one
/// transaction per session.
pub async fn import_dir(
    store: &dyn Store,
    workspace: &str,
    dir: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<Report> {
    let sessions_dir = if dir.join("sessions").is_dir() {
        dir.join("sessions")
    } else {
        dir.to_path_buf()
    };
    let mut report = Report::default();
    let index = match std::fs::read(sessions_dir.join("_index.json")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Json::new(),
        Err(e) => {
            report.problems.push(("_index.json".into(), e.to_string()));
            Json::new()
        }
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            _ => {
                report.problems.push((
                    "_index.json".into(),
                    "not a JSON object; titles derived from the messages".into(),
                ));
                Json::new()
            }
        },
    };
    let mut files: Vec<String> = std::fs::read_dir(&sessions_dir)
        .with_context(|| format!("cannot read {}", sessions_dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.ends_with(".json") && !name.starts_with('_') && !name.ends_with("_compaction.json")
        })
        .collect();
    files.sort();
    progress.set_length(files.len() as u64);
    for file in files {
        progress.inc(1);
        let name = file.trim_end_matches(".json").to_string();
        let parsed = std::fs::read(sessions_dir.join(&file))
            .map_err(|e| e.to_string())
            .and_then(|bytes| session(&name, &bytes, index.get(&name)));
        match parsed {
            Err(reason) => report.problems.push((file, reason)),
            Ok(None) => {}
            Ok(Some(imported)) => {
                let outcome = store.import_session(workspace, imported).await?;
                if outcome.added > 0 || outcome.created {
                    report.imported.push((name, outcome.added, outcome.created));
                } else {
                    report.unchanged += 1;
                }
            }
        }
    }
    Ok(report)
}

/// One session file; `Ok(None)` for an empty one (PocketPaw does not list those either).
fn session(
    name: &str,
    bytes: &[u8],
    entry: Option<&Value>,
) -> Result<Option<ImportedSession>, String> {
    let Value::Array(items) =
        serde_json::from_slice::<Value>(bytes).map_err(|e| format!("invalid JSON: {e}"))?
    else {
        return Err("not a JSON array of messages".into());
    };
    if items.is_empty() {
        return Ok(None);
    }
    let mut messages = Vec::with_capacity(items.len());
    let mut last: Option<Micros> = None;
    for (i, item) in items.iter().enumerate() {
        let message = message(item, last).map_err(|e| format!("message {i}: {e}"))?;
        last = message.created_at;
        messages.push(message);
    }
    let entry = entry.and_then(Value::as_object);
    let field = |key: &str| entry.and_then(|e| e.get(key)).and_then(Value::as_str);
    let title = field(TITLE_KEY).map(str::to_string).unwrap_or_else(|| {
        auto_title(
            messages
                .iter()
                .find(|m| m.peer == "user" && !m.content.trim().is_empty())
                .map(|m| m.content.as_str()),
        )
    });
    let mut metadata = Json::new();
    metadata.insert(TITLE_KEY.into(), Value::String(title));
    if let Some(user_title) = field(USER_TITLE_KEY) {
        metadata.insert(USER_TITLE_KEY.into(), Value::String(user_title.into()));
    }
    let channel = field(CHANNEL_KEY).map_or_else(|| channel_of(name), str::to_string);
    metadata.insert(CHANNEL_KEY.into(), Value::String(channel));
    let first = messages[0].created_at.unwrap_or_else(time::now_micros);
    let created_at = field("created").and_then(time::parse).unwrap_or(first);
    Ok(Some(ImportedSession {
        name: name.to_string(),
        metadata,
        configuration: Json::new(),
        created_at: created_at.min(first),
        messages,
    }))
}

/// A PocketPaw message: `content` is required; a missing role is `user`; naive
/// timestamps are UTC, and a missing or unreadable one takes the previous message's.
fn message(item: &Value, previous: Option<Micros>) -> Result<NewMessage, String> {
    let Value::Object(map) = item else {
        return Err("not an object".into());
    };
    let Some(Value::String(content)) = map.get("content") else {
        return Err("no text content".into());
    };
    let role = match map.get("role") {
        Some(Value::String(r)) if !r.is_empty() => r.clone(),
        _ => DEFAULT_ROLE.to_string(),
    };
    let created_at = map
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(time::parse)
        .or(previous)
        .unwrap_or_else(time::now_micros);
    let metadata = match map.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Json::new(),
    };
    Ok(NewMessage {
        public_id: ids::new_public_id(),
        token_count: tokens::count(content),
        content: content.clone(),
        peer: role,
        metadata,
        created_at: Some(created_at),
    })
}
