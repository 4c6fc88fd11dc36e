//! PocketPaw's session download: pretty JSON or Markdown, always as an attachment.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use engram_core::Error;
use engram_core::model::Message;
use engram_core::time::{format as iso, now_micros};
use serde_json::json;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Markdown,
}

impl Format {
    /// `json` (the default) or `md`; anything else is PocketPaw's 400.
    pub fn parse(raw: Option<&str>) -> Result<Format, ApiError> {
        match raw.unwrap_or("json") {
            "json" => Ok(Format::Json),
            "md" => Ok(Format::Markdown),
            _ => Err(ApiError(Error::BadRequest(
                "Format must be 'json' or 'md'".into(),
            ))),
        }
    }
}

fn clock(micros: i64, pattern: &str) -> String {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or_default()
        .format(pattern)
        .to_string()
}

/// Python's `str.capitalize`: first character upper case, the rest lower case.
fn capitalize(role: &str) -> String {
    let mut chars = role.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn markdown(id: &str, messages: &[Message], now: i64) -> String {
    let mut out = format!(
        "# Conversation Export\n\n**Session:** `{id}` | **Messages:** {} | **Exported:** {} UTC\n\n---\n",
        messages.len(),
        clock(now, "%Y-%m-%d %H:%M")
    );
    for m in messages {
        out.push_str(&format!(
            "\n**{}** ({}):\n{}\n\n---\n",
            capitalize(&m.peer_id),
            clock(m.created_at, "%H:%M"),
            m.content
        ));
    }
    out
}

/// The file for `messages` (oldest first) of the session `id` as the client named it.
pub fn render(id: &str, format: Format, messages: &[Message]) -> Response {
    let now = now_micros();
    let stem: String = id.chars().take(20).collect();
    let (body, content_type, ext) = match format {
        Format::Json => {
            let items: Vec<_> = messages
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id,
                        "role": m.peer_id,
                        "content": m.content,
                        "timestamp": iso(m.created_at),
                        "metadata": m.metadata,
                    })
                })
                .collect();
            let doc = json!({
                "export_version": "1.0",
                "exported_at": iso(now),
                "session_id": id,
                "message_count": messages.len(),
                "messages": items,
            });
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            (text, "application/json", "json")
        }
        Format::Markdown => (
            markdown(id, messages, now),
            "text/markdown; charset=utf-8",
            "md",
        ),
    };
    let disposition = format!("attachment; filename=\"pocketpaw-session-{stem}.{ext}\"");
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_layout() {
        let m = Message {
            id: "m1".into(),
            content: "hi there".into(),
            peer_id: "assistant".into(),
            session_id: "s".into(),
            metadata: Default::default(),
            created_at: engram_core::time::parse("2026-02-20T10:05:00Z").unwrap(),
            workspace_id: "w".into(),
            token_count: 2,
        };
        let now = engram_core::time::parse("2026-02-21T08:30:00Z").unwrap();
        assert_eq!(
            markdown("s1", &[m], now),
            "# Conversation Export\n\n**Session:** `s1` | **Messages:** 1 | **Exported:** 2026-02-21 08:30 UTC\n\n---\n\n**Assistant** (10:05):\nhi there\n\n---\n"
        );
        assert_eq!(capitalize("uSER"), "User");
    }
}
