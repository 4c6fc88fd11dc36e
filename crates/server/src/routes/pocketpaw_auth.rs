//! The one place PocketPaw callers are authenticated, in PocketPaw's order: a `?token=`
//! query (master or session token); only when the query has none, `Authorization:
//! Bearer` (master or session token); then the `pocketpaw_session` cookie (session
//! token). A session token is PocketPaw's stateless `<expiry unix seconds>:<hex
//! HMAC-SHA256 of the expiry, keyed by the master token>`, so tokens PocketPaw issued
//! with the same master token work here unchanged.

use std::collections::HashMap;

use axum::extract::{Query, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engram_core::Error;
use engram_core::auth::{Access, Target, Verdict};
use engram_core::time::now_micros;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::AppState;
use crate::auth::{Secret, decode};
use crate::error::ApiError;

const COOKIE: &str = "pocketpaw_session";

pub async fn authorize(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let master = app.pocketpaw.token.as_deref();
    let secret = app.auth.secret();
    if master.is_none() && secret.is_none() {
        return next.run(req).await;
    }
    let by_pocketpaw = master.is_some_and(|m| accepted(&req, m, chrono::Utc::now().timestamp()));
    let by_key = secret.is_some_and(|s| engram_key_allowed(&req, s, &app.pocketpaw.workspace));
    if by_pocketpaw || by_key {
        next.run(req).await
    } else {
        ApiError(Error::Unauthorized("Unauthorized".into())).into_response()
    }
}

/// An engram key in `Authorization: Bearer` that may use the PocketPaw workspace: an
/// admin key or a key of that workspace.
fn engram_key_allowed(req: &Request, secret: &Secret, workspace: &str) -> bool {
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let Ok(claims) = decode(secret, token.trim(), now_micros()) else {
        return false;
    };
    let target = Target {
        workspace: Some(workspace),
        ..Target::default()
    };
    matches!(
        engram_core::auth::authorize(&claims, Access::PocketPaw, &target),
        Ok(Verdict::Allow)
    )
}

fn accepted(req: &Request, master: &str, now: i64) -> bool {
    let valid = |token: &str| same(token, master) || session_token_valid(token, master, now);
    let query = Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .ok()
        .and_then(|Query(q)| q.get("token").cloned());
    let header_value = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let bearer = header_value(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer "));
    let cookie = header_value(header::COOKIE).and_then(|cookies| {
        cookies
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value)
    });
    (match &query {
        Some(token) => valid(token),
        None => bearer.is_some_and(valid),
    }) || cookie.is_some_and(|c| session_token_valid(c, master, now))
}

/// Compares without stopping at the first difference, so timing does not leak a token.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The hex signature PocketPaw puts after the expiry.
pub fn sign(expiry: &str, master: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(master.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(expiry.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn session_token_valid(token: &str, master: &str, now: i64) -> bool {
    let Some((expiry, signature)) = token.split_once(':') else {
        return false;
    };
    match expiry.parse::<i64>() {
        Ok(at) if now <= at => same(signature, &sign(expiry, master)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens() {
        let master = "m";
        let good = format!("2000:{}", sign("2000", master));
        assert!(session_token_valid(&good, master, 1999));
        assert!(session_token_valid(&good, master, 2000));
        assert!(!session_token_valid(&good, master, 2001), "expired");
        assert!(!session_token_valid(&good, "other", 1999), "other master");
        assert!(!session_token_valid("2000:00", master, 1999));
        assert!(!session_token_valid("soon:00", master, 1999));
        // RFC 4231 test case 2: key "Jefe", message "what do ya want for nothing?".
        assert_eq!(
            sign("what do ya want for nothing?", "Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
