//! Domain records as they appear on the wire (field names follow the reference's
//! serialization aliases), and the inputs the store accepts.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::filter::Filter;
use crate::time::Micros;

pub type Json = Map<String, Value>;

fn iso<S: Serializer>(micros: &Micros, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::format(*micros))
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Workspace {
    pub id: String,
    #[schema(value_type = Object)]
    pub metadata: Json,
    #[schema(value_type = Object)]
    pub configuration: Json,
    #[serde(serialize_with = "iso")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Micros,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Peer {
    pub id: String,
    pub workspace_id: String,
    #[serde(serialize_with = "iso")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Micros,
    #[schema(value_type = Object)]
    pub metadata: Json,
    #[schema(value_type = Object)]
    pub configuration: Json,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Session {
    pub id: String,
    pub is_active: bool,
    pub workspace_id: String,
    #[schema(value_type = Object)]
    pub metadata: Json,
    #[schema(value_type = Object)]
    pub configuration: Json,
    #[serde(serialize_with = "iso")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Micros,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Message {
    pub id: String,
    pub content: String,
    pub peer_id: String,
    pub session_id: String,
    #[schema(value_type = Object)]
    pub metadata: Json,
    #[serde(serialize_with = "iso")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Micros,
    pub workspace_id: String,
    pub token_count: i64,
}

/// A peer's membership settings in one session. `None` means "not set here".
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SessionPeerConfig {
    pub observe_me: Option<bool>,
    pub observe_others: Option<bool>,
}

impl SessionPeerConfig {
    /// Later non-null fields win, as the reference's config merge does.
    pub fn merged(self, update: SessionPeerConfig) -> SessionPeerConfig {
        SessionPeerConfig {
            observe_me: update.observe_me.or(self.observe_me),
            observe_others: update.observe_others.or(self.observe_others),
        }
    }

    pub fn to_json(self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub fn from_json(v: &Value) -> SessionPeerConfig {
        serde_json::from_value(v.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub size: i64,
    pub pages: i64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, total: i64, req: PageRequest) -> Self {
        let pages = if total == 0 {
            0
        } else {
            (total + req.size - 1) / req.size
        };
        Page {
            items,
            total,
            page: req.page,
            size: req.size,
            pages,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub size: i64,
}

impl PageRequest {
    pub fn offset(self) -> i64 {
        (self.page - 1).saturating_mul(self.size)
    }
}

/// The `seq_in_session` range (inclusive) holding one page of an unfiltered message
/// listing. Messages are never removed from a live session and their sequence is
/// gap-free from 1, so the session's last sequence number is the total and a page is
/// a direct range lookup instead of a count and an offset scan.
pub fn seq_window(total: i64, page: PageRequest, reverse: bool) -> (i64, i64) {
    let offset = page.offset();
    if reverse {
        (total - offset - page.size + 1, total - offset)
    } else {
        (offset + 1, offset + page.size)
    }
}

/// A paginated, filtered, ordered listing.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub page: PageRequest,
    pub reverse: bool,
}

#[derive(Debug, Clone, Default)]
pub struct NewWorkspace {
    pub name: String,
    pub metadata: Option<Json>,
    pub configuration: Option<Json>,
}

/// `None` leaves a field as it is; `Some` replaces (metadata) or merges
/// (configuration, where the resource merges) the stored value.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub metadata: Option<Json>,
    pub configuration: Option<Json>,
}

#[derive(Debug, Clone, Default)]
pub struct NewPeer {
    pub name: String,
    pub changes: Changes,
}

#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub name: String,
    pub changes: Changes,
    pub peers: Vec<(String, SessionPeerConfig)>,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub public_id: String,
    pub content: String,
    pub peer: String,
    pub metadata: Json,
    pub token_count: i64,
    pub created_at: Option<Micros>,
}

/// Shallow merge of top-level keys, as the reference merges configurations.
pub fn merge_top_level(base: &mut Json, update: Json) {
    for (k, v) in update {
        base.insert(k, v);
    }
}
