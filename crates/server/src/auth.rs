//! Authentication: HS256 keys (signed and read here), the `AUTH_*` settings, and the
//! layer that checks every request against the rule its route declares in `scopes`.
//!
//! HS256 is one HMAC; it is written here on the `hmac` crate (also used to sign
//! webhooks) instead of pulling in a JWT library and a second crypto backend. Only
//! `alg: HS256` is accepted, and signatures are compared in constant time.

use std::fmt;
use std::str::FromStr;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use engram_core::Error;
use engram_core::auth::{self, Access, Claims, Target, Verdict};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::AppState;
use crate::error::ApiError;

/// Shortest accepted `AUTH_JWT_SECRET`: HS256 keys shorter than the hash are weak.
pub const MIN_SECRET_BYTES: usize = 32;

/// A secret that never prints (settings are `Debug` for diagnostics).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// Whether requests need a key, and the key that signs them.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    secret: Option<Secret>,
}

impl AuthConfig {
    pub fn off() -> AuthConfig {
        AuthConfig { secret: None }
    }

    /// Checks the settings as startup does: with auth on, a secret of at least
    /// `MIN_SECRET_BYTES` is required.
    pub fn new(use_auth: bool, secret: Option<Secret>) -> anyhow::Result<AuthConfig> {
        if !use_auth {
            return Ok(AuthConfig::off());
        }
        let secret = secret.filter(|s| !s.0.is_empty()).ok_or_else(|| {
            anyhow::anyhow!("AUTH_JWT_SECRET: required when AUTH_USE_AUTH is true")
        })?;
        if secret.0.len() < MIN_SECRET_BYTES {
            anyhow::bail!(
                "AUTH_JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes, got {}",
                secret.0.len()
            );
        }
        Ok(AuthConfig {
            secret: Some(secret),
        })
    }

    pub fn enabled(&self) -> bool {
        self.secret.is_some()
    }

    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }
}

/// The claims of a key as the reference writes them; absent claims are omitted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyClaims {
    pub t: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
}

impl KeyClaims {
    /// A key created now: `t` is the creation time, whole seconds, UTC.
    pub fn now() -> KeyClaims {
        KeyClaims {
            t: whole_seconds(engram_core::time::now_micros()),
            ..KeyClaims::default()
        }
    }
}

/// ISO-8601 with `Z` and no fraction, as the reference writes `t` and `exp`.
pub fn whole_seconds(micros: i64) -> String {
    let formatted = engram_core::time::format(micros.div_euclid(1_000_000) * 1_000_000);
    match formatted.split_once('.') {
        Some((head, _)) => format!("{head}Z"),
        None => formatted,
    }
}

fn mac(secret: &Secret) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret.bytes()).expect("HMAC takes any key length")
}

pub fn encode(secret: &Secret, claims: &KeyClaims) -> String {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let signature = B64.encode(m.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn invalid() -> Error {
    auth::denied(auth::INVALID)
}

fn json_part(part: &str) -> Result<Map<String, Value>, Error> {
    let bytes = B64
        .decode(part.trim_end_matches('='))
        .map_err(|_| invalid())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid()),
    }
}

fn scope_claim(claims: &Map<String, Value>, key: &str) -> Result<Option<String>, Error> {
    match claims.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid()),
    }
}

/// Expiry as the reference writes it (an ISO-8601 string) or as standard JWTs do
/// (seconds since the epoch); a key past it is refused.
fn check_expiry(exp: Option<&Value>, now: i64) -> Result<(), Error> {
    let expires = match exp {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) if s.is_empty() => return Ok(()),
        Some(Value::String(s)) => engram_core::time::parse(s).ok_or_else(invalid)?,
        Some(Value::Number(n)) => {
            let seconds = n.as_f64().ok_or_else(invalid)?;
            (seconds * 1_000_000.0) as i64
        }
        Some(_) => return Err(invalid()),
    };
    if expires < now {
        return Err(auth::denied(auth::EXPIRED));
    }
    Ok(())
}

/// Verifies a key's signature and reads its claims as of `now` (microseconds).
pub fn decode(secret: &Secret, token: &str, now: i64) -> Result<Claims, Error> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if json_part(header)?.get("alg") != Some(&Value::String("HS256".into())) {
        return Err(invalid());
    }
    let signature = B64
        .decode(signature.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let mut m = mac(secret);
    m.update(header.as_bytes());
    m.update(b".");
    m.update(payload.as_bytes());
    m.verify_slice(&signature).map_err(|_| invalid())?;
    let claims = json_part(payload)?;
    check_expiry(claims.get("exp"), now)?;
    let admin = match claims.get("ad") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid()),
    };
    let decoded = Claims {
        admin,
        workspace: scope_claim(&claims, "w")?,
        peer: scope_claim(&claims, "p")?,
        session: scope_claim(&claims, "s")?,
    };
    if decoded.missing_workspace() {
        return Err(auth::denied(auth::MISSING_WORKSPACE));
    }
    Ok(decoded)
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn check(app: &AppState, req: &mut Request) -> Result<Claims, Error> {
    let Some(secret) = app.auth.secret() else {
        return Ok(Claims::admin());
    };
    let Some(template) = req.extensions().get::<MatchedPath>().cloned() else {
        // Unrouted requests get their 404 from the fallback.
        return Ok(Claims::default());
    };
    let access = crate::scopes::access(req.method().as_str(), template.as_str());
    // PocketPaw routes accept PocketPaw's own tokens too; their layer decides.
    if access == Access::Public || access == Access::PocketPaw {
        return Ok(Claims::default());
    }
    let token = bearer(req).ok_or_else(|| auth::denied(auth::NO_TOKEN))?;
    let claims = decode(secret, token, engram_core::time::now_micros())?;
    let (mut parts, body) = std::mem::take(req).into_parts();
    let params = RawPathParams::from_request_parts(&mut parts, &()).await;
    *req = Request::from_parts(parts, body);
    let params: Vec<(String, String)> = params
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let target = Target {
        workspace: param("workspace_id"),
        peer: param("peer_id"),
        session: param("session_id"),
    };
    match auth::authorize(&claims, access, &target)? {
        Verdict::Allow => Ok(claims),
        Verdict::IfMember { peer } => {
            let (Some(w), Some(s)) = (target.workspace, target.session) else {
                return Err(auth::denied(auth::NOT_PERMITTED));
            };
            if app.store.is_active_member(w, s, &peer).await? {
                Ok(claims)
            } else {
                Err(auth::denied(auth::NOT_PERMITTED))
            }
        }
    }
}

/// Authenticates and authorizes the request, then hands the claims to the handler.
pub async fn layer(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    match check(&app, &mut req).await {
        Ok(claims) => {
            req.extensions_mut().insert(claims);
            next.run(req).await
        }
        Err(e) => ApiError(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret("a-test-secret-that-is-long-enough-for-hs256".into())
    }

    #[test]
    fn round_trip_and_tampering() {
        let mut c = KeyClaims::now();
        c.w = Some("w".into());
        c.p = Some("alice".into());
        let token = encode(&secret(), &c);
        let claims = decode(&secret(), &token, 0).unwrap();
        assert_eq!(claims.workspace.as_deref(), Some("w"));
        assert_eq!(claims.peer.as_deref(), Some("alice"));
        let other = Secret("another-secret-that-is-long-enough-for-hs256".into());
        let err = decode(&other, &token, 0).unwrap_err();
        assert_eq!(err.to_string(), auth::INVALID);
        assert_eq!(
            decode(&secret(), "a.b", 0).unwrap_err().to_string(),
            auth::INVALID
        );
    }

    #[test]
    fn expiry_as_string_or_number() {
        let mut c = KeyClaims::now();
        c.w = Some("w".into());
        c.exp = Some("2030-01-01T00:00:00Z".into());
        let token = encode(&secret(), &c);
        assert!(decode(&secret(), &token, 0).is_ok());
        let after = engram_core::time::parse("2030-01-02T00:00:00Z").unwrap();
        assert_eq!(
            decode(&secret(), &token, after).unwrap_err().to_string(),
            auth::EXPIRED
        );
        assert!(check_expiry(Some(&serde_json::json!(1_000)), 999_000_000).is_ok());
        assert!(check_expiry(Some(&serde_json::json!(1_000)), 1_000_000_001).is_err());
        assert!(check_expiry(Some(&serde_json::json!(true)), 0).is_err());
    }

    #[test]
    fn settings_refuse_missing_or_short_secrets() {
        assert!(!AuthConfig::new(false, None).unwrap().enabled());
        assert!(AuthConfig::new(true, None).is_err());
        assert!(AuthConfig::new(true, Some(Secret("short".into()))).is_err());
        assert!(AuthConfig::new(true, Some(secret())).unwrap().enabled());
        assert_eq!(format!("{:?}", secret()), "[redacted]");
    }
}
