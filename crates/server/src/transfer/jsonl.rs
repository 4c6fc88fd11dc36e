//! engram's own dump format: JSON Lines, one record per line, tagged by `kind`. A
//! workspace line comes first, then its peers, then each session followed by its
//! messages in order. Reading it back through the store gives the same API output on
//! either engine (ids, metadata, configuration, memberships, message times and token
//! counts are kept; peers and memberships get the import's own creation times).

use std::io::{BufRead, Write};

use anyhow::{Context, anyhow, bail};
use engram_core::Store;
use engram_core::filter::{self, Resource};
use engram_core::model::{
    Changes, Json, ListQuery, NewMessage, NewPeer, NewWorkspace, PageRequest, SessionPeerConfig,
};
use engram_core::pocketpaw::ImportedSession;
use engram_core::store::MembershipMode;
use engram_core::time;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    Workspace {
        id: String,
        metadata: Json,
        configuration: Json,
    },
    Peer {
        id: String,
        metadata: Json,
        configuration: Json,
    },
    Session {
        id: String,
        metadata: Json,
        configuration: Json,
        created_at: String,
        peers: Vec<(String, SessionPeerConfig)>,
    },
    Message {
        id: String,
        peer_id: String,
        content: String,
        metadata: Json,
        created_at: String,
        token_count: i64,
    },
}

const PAGE: i64 = 100;

fn by_name(resource: Resource, name: &str) -> anyhow::Result<ListQuery> {
    Ok(ListQuery {
        filter: filter::parse(resource, &json!({ "id": name }))?,
        page: PageRequest { page: 1, size: 1 },
        reverse: false,
    })
}

fn page(n: i64) -> ListQuery {
    ListQuery {
        filter: None,
        page: PageRequest {
            page: n,
            size: PAGE,
        },
        reverse: false,
    }
}

fn line(out: &mut impl Write, record: &Record) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes `workspace` (or only `session` of it, with its members) to `out`; returns
/// the number of sessions and messages written.
pub async fn export(
    store: &dyn Store,
    workspace: &str,
    session: Option<&str>,
    out: &mut impl Write,
    progress: &ProgressBar,
) -> anyhow::Result<(usize, usize)> {
    let ws = store
        .list_workspaces(by_name(Resource::Workspace, workspace)?)
        .await?
        .items
        .pop()
        .ok_or_else(|| anyhow!("no workspace {workspace}"))?;
    line(
        out,
        &Record::Workspace {
            id: ws.id,
            metadata: ws.metadata,
            configuration: ws.configuration,
        },
    )?;
    let mut sessions = Vec::new();
    match session {
        Some(name) => {
            let found = store
                .list_sessions(workspace, by_name(Resource::Session, name)?)
                .await?;
            sessions = found.items;
            if sessions.is_empty() {
                bail!("no session {name} in workspace {workspace}");
            }
        }
        None => {
            for n in 1.. {
                let batch = store.list_sessions(workspace, page(n)).await?;
                sessions.extend(batch.items);
                if n >= batch.pages {
                    break;
                }
            }
        }
    }
    let mut members = Vec::with_capacity(sessions.len());
    for s in &sessions {
        let mut names = Vec::new();
        for n in 1.. {
            let batch = store
                .list_session_peers(workspace, &s.id, page(n).page)
                .await?;
            names.extend(batch.items.into_iter().map(|p| p.id));
            if n >= batch.pages {
                break;
            }
        }
        let mut configs = Vec::with_capacity(names.len());
        for peer in names {
            let config = store
                .get_session_peer_config(workspace, &s.id, &peer)
                .await?;
            configs.push((peer, config));
        }
        members.push(configs);
    }
    for n in 1.. {
        let batch = store.list_peers(workspace, page(n)).await?;
        for p in batch.items {
            let wanted =
                session.is_none() || members.iter().flatten().any(|(name, _)| *name == p.id);
            if wanted {
                line(
                    out,
                    &Record::Peer {
                        id: p.id,
                        metadata: p.metadata,
                        configuration: p.configuration,
                    },
                )?;
            }
        }
        if n >= batch.pages {
            break;
        }
    }
    let mut messages = 0;
    progress.set_length(sessions.len() as u64);
    for (s, peers) in sessions.iter().zip(members) {
        let items = store
            .session_messages(workspace, &s.id)
            .await?
            .unwrap_or_default();
        line(
            out,
            &Record::Session {
                id: s.id.clone(),
                metadata: s.metadata.clone(),
                configuration: s.configuration.clone(),
                created_at: time::format(s.created_at),
                peers,
            },
        )?;
        messages += items.len();
        for m in items {
            line(
                out,
                &Record::Message {
                    id: m.id,
                    peer_id: m.peer_id,
                    content: m.content,
                    metadata: m.metadata,
                    created_at: time::format(m.created_at),
                    token_count: m.token_count,
                },
            )?;
        }
        progress.inc(1);
    }
    out.flush()?;
    Ok((sessions.len(), messages))
}

struct Pending {
    session: ImportedSession,
    peers: Vec<(String, SessionPeerConfig)>,
}

fn micros(text: &str, at: usize) -> anyhow::Result<i64> {
    time::parse(text).ok_or_else(|| anyhow!("line {at}: bad timestamp {text:?}"))
}

/// Reads what `export` wrote; sessions already present only receive the messages they
/// lack, so a repeated import changes nothing. Returns sessions and messages added.
pub async fn import(store: &dyn Store, input: impl BufRead) -> anyhow::Result<(usize, usize)> {
    let mut workspace: Option<String> = None;
    let mut pending: Option<Pending> = None;
    let (mut sessions, mut messages) = (0, 0);
    for (i, text) in input.lines().enumerate() {
        let at = i + 1;
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(&text).with_context(|| format!("line {at}: not a record"))?;
        let ws = || {
            workspace
                .clone()
                .ok_or_else(|| anyhow!("line {at}: no workspace line before it"))
        };
        match record {
            Record::Workspace {
                id,
                metadata,
                configuration,
            } => {
                store
                    .get_or_create_workspace(NewWorkspace {
                        name: id.clone(),
                        metadata: Some(metadata),
                        configuration: Some(configuration),
                    })
                    .await?;
                workspace = Some(id);
            }
            Record::Peer {
                id,
                metadata,
                configuration,
            } => {
                let new = NewPeer {
                    name: id,
                    changes: Changes {
                        metadata: Some(metadata),
                        configuration: Some(configuration),
                    },
                };
                store.get_or_create_peer(&ws()?, new).await?;
            }
            Record::Session {
                id,
                metadata,
                configuration,
                created_at,
                peers,
            } => {
                let ws = ws()?;
                if let Some(done) = pending.take() {
                    let (s, m) = flush(store, &ws, done).await?;
                    (sessions, messages) = (sessions + s, messages + m);
                }
                pending = Some(Pending {
                    session: ImportedSession {
                        name: id,
                        metadata,
                        configuration,
                        created_at: micros(&created_at, at)?,
                        messages: Vec::new(),
                    },
                    peers,
                });
            }
            Record::Message {
                id,
                peer_id,
                content,
                metadata,
                created_at,
                token_count,
            } => {
                let created_at = micros(&created_at, at)?;
                let Some(p) = pending.as_mut() else {
                    bail!("line {at}: message before any session line");
                };
                p.session.messages.push(NewMessage {
                    public_id: id,
                    content,
                    peer: peer_id,
                    metadata,
                    token_count,
                    created_at: Some(created_at),
                });
            }
        }
    }
    if let (Some(done), Some(ws)) = (pending, workspace) {
        let (s, m) = flush(store, &ws, done).await?;
        (sessions, messages) = (sessions + s, messages + m);
    }
    Ok((sessions, messages))
}

async fn flush(store: &dyn Store, workspace: &str, p: Pending) -> anyhow::Result<(usize, usize)> {
    let name = p.session.name.clone();
    let outcome = store.import_session(workspace, p.session).await?;
    if !p.peers.is_empty() {
        // Joining keeps an active member's settings (message authors joined with the
        // defaults just now), so each member's exported settings are then set on top.
        store
            .set_session_peers(workspace, &name, p.peers.clone(), MembershipMode::Add)
            .await?;
        for (peer, config) in p.peers {
            store
                .set_session_peer_config(workspace, &name, &peer, config)
                .await?;
        }
    }
    Ok((usize::from(outcome.created), outcome.added))
}
