//! Who may call what: the claims a verified key carries, the access rule each route
//! declares, and the one function that decides between them (reference §2.3).

use async_trait::async_trait;

use crate::{Error, Result};

/// What a verified key grants. Absent scope claims are `None`; blank ones were
/// normalised to `None` when the key was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub admin: bool,
    pub workspace: Option<String>,
    pub peer: Option<String>,
    pub session: Option<String>,
}

impl Claims {
    /// The claims of every request when authentication is off.
    pub fn admin() -> Claims {
        Claims {
            admin: true,
            ..Claims::default()
        }
    }

    /// A peer or session scope means nothing without its workspace: the same peer
    /// name exists in every workspace.
    pub fn missing_workspace(&self) -> bool {
        (self.peer.is_some() || self.session.is_some()) && self.workspace.is_none()
    }
}

/// The access rule a route declares. The scope values come from the route's path
/// parameters `workspace_id`, `peer_id` and `session_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed (health, the API description).
    Public,
    /// Admin keys only.
    Admin,
    /// Any valid key; the handler compares the claims with the body (create routes,
    /// whose resource name arrives in the body).
    SelfAuthorizing,
    /// Keys of the path's workspace (workspace-only keys and admin).
    Workspace,
    /// The workspace's keys and the path peer's own keys.
    Peer,
    /// The workspace's keys and the path session's own keys.
    Session,
    /// As `Session`, plus read access for keys of peers that are active members of
    /// the session. Never declared on a route that changes anything.
    SessionMemberRead,
    /// PocketPaw's session routes: checked by their own layer, which accepts PocketPaw's
    /// tokens and engram keys allowed on the PocketPaw workspace (as `Workspace`, with
    /// that workspace as the target).
    PocketPaw,
}

/// The scope values a request's path names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target<'a> {
    pub workspace: Option<&'a str>,
    pub peer: Option<&'a str>,
    pub session: Option<&'a str>,
}

/// A decision that may still need the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Allowed only if this peer is an active member of the target session.
    IfMember {
        peer: String,
    },
}

pub const NO_TOKEN: &str = "No access token provided";
pub const INVALID: &str = "Invalid JWT";
pub const EXPIRED: &str = "JWT expired";
pub const MISSING_WORKSPACE: &str = "Invalid JWT scope: peer/session token missing workspace";
pub const NEEDS_ADMIN: &str = "Resource requires admin privileges";
pub const NOT_PERMITTED: &str = "JWT not permissioned for this resource";
pub const UNAUTHORIZED: &str = "Unauthorized access to resource";

pub fn denied(message: &str) -> Error {
    Error::Unauthorized(message.to_string())
}

/// Decides a verified key against a route's rule. The narrowest claim decides: a
/// peer or session key never falls back to its workspace's access.
pub fn authorize(claims: &Claims, access: Access, target: &Target) -> Result<Verdict> {
    if claims.admin || access == Access::Public {
        return Ok(Verdict::Allow);
    }
    let (peer_param, session_param, member_read) = match access {
        Access::Public => return Ok(Verdict::Allow),
        Access::Admin => return Err(denied(NEEDS_ADMIN)),
        Access::SelfAuthorizing => return Ok(Verdict::Allow),
        Access::Workspace | Access::PocketPaw => (None, None, false),
        Access::Peer => (target.peer, None, false),
        Access::Session => (None, target.session, false),
        Access::SessionMemberRead => (None, target.session, true),
    };
    let workspace = target.workspace;
    if workspace.is_some() && claims.workspace.as_deref() != workspace {
        return Err(denied(NOT_PERMITTED));
    }
    if let Some(s) = &claims.session {
        return match session_param {
            Some(p) if p == s => Ok(Verdict::Allow),
            _ => Err(denied(NOT_PERMITTED)),
        };
    }
    if let Some(p) = &claims.peer {
        if peer_param.is_some_and(|x| x == p) {
            return Ok(Verdict::Allow);
        }
        if member_read && session_param.is_some() && workspace.is_some() {
            return Ok(Verdict::IfMember { peer: p.clone() });
        }
        return Err(denied(NOT_PERMITTED));
    }
    if claims.workspace.is_some() && workspace.is_some() {
        return Ok(Verdict::Allow);
    }
    Err(denied(NOT_PERMITTED))
}

/// Creating a workspace: non-admin keys only for their own workspace.
pub fn may_create_workspace(claims: &Claims, name: &str) -> Result<()> {
    if claims.admin || claims.workspace.as_deref() == Some(name) {
        return Ok(());
    }
    Err(denied(UNAUTHORIZED))
}

/// Creating a peer or session named `name` in `workspace`: a key of another workspace
/// is refused, and so is a peer (session) key naming a different peer (session).
/// `own` is the key's claim of the created kind.
pub fn may_create_in(
    claims: &Claims,
    workspace: &str,
    own: Option<&String>,
    name: &str,
) -> Result<()> {
    if claims.admin {
        return Ok(());
    }
    if claims.workspace.as_deref().is_some_and(|w| w != workspace) || own.is_some_and(|o| o != name)
    {
        return Err(denied(UNAUTHORIZED));
    }
    Ok(())
}

/// The check behind `Verdict::IfMember`.
#[async_trait]
pub trait MembershipStore {
    /// Whether `peer` is an active (not left) member of the live `session`.
    async fn is_active_member(&self, workspace: &str, session: &str, peer: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(w: Option<&str>, p: Option<&str>, s: Option<&str>) -> Claims {
        Claims {
            admin: false,
            workspace: w.map(str::to_string),
            peer: p.map(str::to_string),
            session: s.map(str::to_string),
        }
    }

    fn target<'a>(w: &'a str, p: Option<&'a str>, s: Option<&'a str>) -> Target<'a> {
        Target {
            workspace: Some(w),
            peer: p,
            session: s,
        }
    }

    fn message(r: Result<Verdict>) -> String {
        match r {
            Err(Error::Unauthorized(m)) => m,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn narrowest_claim_decides() {
        let ws = key(Some("w"), None, None);
        let peer = key(Some("w"), Some("alice"), None);
        let sess = key(Some("w"), None, Some("s1"));
        let t = target("w", Some("alice"), None);
        assert_eq!(authorize(&ws, Access::Peer, &t).unwrap(), Verdict::Allow);
        assert_eq!(authorize(&peer, Access::Peer, &t).unwrap(), Verdict::Allow);
        let bob = target("w", Some("bob"), None);
        assert_eq!(message(authorize(&peer, Access::Peer, &bob)), NOT_PERMITTED);
        assert_eq!(message(authorize(&sess, Access::Peer, &t)), NOT_PERMITTED);
        assert_eq!(
            message(authorize(
                &peer,
                Access::Workspace,
                &target("w", None, None)
            )),
            NOT_PERMITTED
        );
        assert_eq!(
            message(authorize(&ws, Access::Workspace, &target("x", None, None))),
            NOT_PERMITTED
        );
    }

    #[test]
    fn sessions_and_member_reads() {
        let peer = key(Some("w"), Some("alice"), None);
        let sess = key(Some("w"), None, Some("s1"));
        let t = target("w", None, Some("s1"));
        assert_eq!(
            authorize(&sess, Access::Session, &t).unwrap(),
            Verdict::Allow
        );
        assert_eq!(
            message(authorize(
                &sess,
                Access::Session,
                &target("w", None, Some("s2"))
            )),
            NOT_PERMITTED
        );
        assert_eq!(
            message(authorize(&peer, Access::Session, &t)),
            NOT_PERMITTED
        );
        assert_eq!(
            authorize(&peer, Access::SessionMemberRead, &t).unwrap(),
            Verdict::IfMember {
                peer: "alice".into()
            }
        );
    }

    #[test]
    fn admin_public_and_self_authorizing() {
        let none = Claims::default();
        let t = target("w", None, None);
        assert_eq!(message(authorize(&none, Access::Admin, &t)), NEEDS_ADMIN);
        assert_eq!(
            message(authorize(&key(Some("w"), None, None), Access::Admin, &t)),
            NEEDS_ADMIN
        );
        assert_eq!(
            authorize(&Claims::admin(), Access::Admin, &t).unwrap(),
            Verdict::Allow
        );
        assert_eq!(
            authorize(&none, Access::SelfAuthorizing, &t).unwrap(),
            Verdict::Allow
        );
        assert_eq!(
            authorize(&none, Access::Public, &t).unwrap(),
            Verdict::Allow
        );
        assert_eq!(
            message(authorize(&none, Access::Workspace, &t)),
            NOT_PERMITTED
        );
    }
}
