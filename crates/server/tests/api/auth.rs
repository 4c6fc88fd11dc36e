//! Authentication on: the route-by-key matrix over every route the router serves (the
//! API description's and those beside it, PocketPaw's included), every error string of
//! reference §2, the keys endpoint, and the create routes' own checks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use engram_core::auth::Access;
use engram_server::AppState;
use engram_server::auth::{AuthConfig, KeyClaims, Secret, encode};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

pub const SECRET: &str = "engram-test-secret-at-least-32-bytes-long";

pub fn secret() -> Secret {
    SECRET.parse().unwrap()
}

pub fn with_auth(state: AppState) -> AppState {
    AppState {
        auth: AuthConfig::new(true, Some(secret())).unwrap(),
        ..state
    }
}

pub fn key(admin: bool, w: Option<&str>, p: Option<&str>, s: Option<&str>) -> String {
    encode(
        &secret(),
        &KeyClaims {
            ad: admin.then_some(true),
            w: w.map(str::to_string),
            p: p.map(str::to_string),
            s: s.map(str::to_string),
            ..KeyClaims::now()
        },
    )
}

/// A token with arbitrary claims, signed like the reference's PyJWT would.
fn raw_token(claims: Value, secret: &[u8]) -> String {
    let head = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = B64.encode(claims.to_string());
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    mac.update(format!("{head}.{body}").as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{sig}")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Admin,
    Workspace,
    OtherWorkspace,
    Peer,
    OtherPeer,
    Session,
    Nobody,
}

const EVERYONE: [Who; 7] = [
    Who::Admin,
    Who::Workspace,
    Who::OtherWorkspace,
    Who::Peer,
    Who::OtherPeer,
    Who::Session,
    Who::Nobody,
];

fn token_of(who: Who) -> Option<String> {
    match who {
        Who::Admin => Some(key(true, None, None, None)),
        Who::Workspace => Some(key(false, Some("w"), None, None)),
        Who::OtherWorkspace => Some(key(false, Some("x"), None, None)),
        Who::Peer => Some(key(false, Some("w"), Some("alice"), None)),
        Who::OtherPeer => Some(key(false, Some("w"), Some("bob"), None)),
        Who::Session => Some(key(false, Some("w"), None, Some("s1"))),
        Who::Nobody => None,
    }
}

/// The rule, restated independently of the server's code: who passes the
/// authentication layer for a route with this rule. The path names workspace `w`,
/// peer `alice` and session `s1`; alice is a member of s1, bob is not.
fn expected(access: Access, who: Who, path: &str) -> Result<(), &'static str> {
    use Who::*;
    let has = |p: &str| path.contains(&format!("{{{p}}}"));
    let allowed = match access {
        Access::Public => true,
        Access::Admin => who == Admin,
        Access::SelfAuthorizing => who != Nobody,
        _ if who == Admin => true,
        _ if !has("workspace_id") => false,
        Access::Workspace => who == Workspace,
        Access::Peer => who == Workspace || (who == Peer && has("peer_id")),
        Access::Session => who == Workspace || (who == Session && has("session_id")),
        Access::SessionMemberRead => {
            who == Workspace || (has("session_id") && matches!(who, Session | Peer))
        }
        // The PocketPaw layer admits admin keys and keys of the PocketPaw workspace (none
        // of the keys here); no PocketPaw path names a workspace, so the arm above decides.
        Access::PocketPaw => false,
    };
    match (allowed, who, access) {
        (true, ..) => Ok(()),
        (false, _, Access::PocketPaw) => Err("Unauthorized"),
        (false, Nobody, _) => Err("No access token provided"),
        (false, _, Access::Admin) => Err("Resource requires admin privileges"),
        (false, ..) => Err("JWT not permissioned for this resource"),
    }
}

async fn seed(app: &TestApp) -> String {
    let admin = token_of(Who::Admin);
    let admin = admin.as_deref();
    for ws in ["w", "x"] {
        let r = app
            .call_as(
                admin,
                Method::POST,
                "/v3/workspaces",
                Some(json!({"id": ws})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    for (s, members) in [("s1", json!({"alice": {}})), ("s2", json!({}))] {
        let r = app
            .call_as(
                admin,
                Method::POST,
                "/v3/workspaces/w/sessions",
                Some(json!({"id": s, "peers": members})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = app
        .call_as(
            admin,
            Method::POST,
            "/v3/workspaces/w/peers",
            Some(json!({"id": "bob"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .call_as(
            admin,
            Method::POST,
            "/v3/workspaces/w/sessions/s1/messages",
            Some(json!({"messages": [{"peer_id": "alice", "content": "hi"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body[0]["id"].as_str().unwrap().to_string()
}

both_engines!(
    every_route_admits_exactly_its_declared_keys,
    |_unused: TestApp| async move {
        let Some(app) = reconfigure(&_unused).await else {
            return;
        };
        let message = seed(&app).await;
        let doc = app.get("/openapi.json").await.body;
        let mut routes: Vec<(String, String)> = vec![];
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().unwrap().keys() {
                routes.push((method.to_uppercase(), path.clone()));
            }
        }
        let described = routes.len();
        for (method, path) in engram_server::app::routes_beside_the_api_description() {
            routes.push((method.to_string(), path.to_string()));
        }
        // Deletions last, so what they remove is not needed by later requests.
        routes.sort_by_key(|(m, _)| m == "DELETE");
        let mut undeclared = vec![];
        let mut wrong = vec![];
        for (method, template) in &routes {
            let Some(access) = engram_server::scopes::declared(method, template) else {
                undeclared.push(format!("{method} {template}"));
                continue;
            };
            let path = template
                .replace("{workspace_id}", "w")
                .replace("{peer_id}", "alice")
                .replace("{session_id}", "s1")
                .replace("{message_id}", &message)
                .replace("{endpoint_id}", "no-such-endpoint")
                .replace("{id}", "no-such-session");
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            for who in EVERYONE {
                // A body no mutating route accepts: the layer decides, then validation
                // stops the request before it changes anything.
                let body = (method != Method::GET).then(|| json!("not an object"));
                let token = token_of(who);
                let r = app
                    .call_as(token.as_deref(), method.clone(), &path, body)
                    .await;
                let got = if r.status == StatusCode::UNAUTHORIZED {
                    Err(r.body["detail"].as_str().unwrap_or_default().to_string())
                } else {
                    Ok(())
                };
                let want = expected(access, who, template).map_err(str::to_string);
                if got != want {
                    wrong.push(format!(
                        "{method} {template} as {who:?}: expected {want:?}, got {} {}",
                        r.status, r.body
                    ));
                }
            }
        }
        assert!(
            undeclared.is_empty(),
            "routes without a declared access rule in scopes::ROUTES: {undeclared:#?}"
        );
        assert!(wrong.is_empty(), "{wrong:#?}");
        assert!(
            described > 30 && routes.len() > described + 15,
            "the matrix walked only {} routes ({described} described)",
            routes.len()
        );
    }
);

/// The routes served beside the API description (the document, its page, PocketPaw's
/// routes) are declared with the access they are meant to have: PocketPaw's are checked
/// by the PocketPaw layer, which an undeclared (admin-only) rule would shut.
#[test]
fn every_route_beside_the_api_description_is_declared() {
    let beside = engram_server::app::routes_beside_the_api_description();
    let pocketpaw = engram_server::routes::pocketpaw::ROUTES;
    assert_eq!(beside.len(), 2 + pocketpaw.len());
    let mut wrong = vec![];
    for (method, path) in beside {
        let want = if pocketpaw.iter().any(|(m, p, _)| (*m, *p) == (method, path)) {
            Access::PocketPaw
        } else {
            Access::Public
        };
        let got = engram_server::scopes::declared(method, path);
        if got != Some(want) {
            wrong.push(format!("{method} {path}: declared {got:?}, meant {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "fix server::scopes::ROUTES: {wrong:#?}");
}

/// Restarts the given engine's app with authentication on.
async fn reconfigure(app: &TestApp) -> Option<TestApp> {
    if app.db_url.is_some() {
        TestApp::postgres_configured(with_auth).await
    } else {
        Some(TestApp::sqlite_configured(with_auth).await)
    }
}

both_engines!(
    every_authentication_error_of_the_reference,
    |_unused: TestApp| async move {
        let Some(app) = reconfigure(&_unused).await else {
            return;
        };
        seed(&app).await;
        let path = "/v3/workspaces/w/sessions/list";
        let deny = |r: crate::helpers::Reply, msg: &str| {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
            assert_eq!(r.body, json!({"detail": msg}));
        };
        let post = |t: Option<String>| {
            let app = &app;
            async move {
                app.call_as(t.as_deref(), Method::POST, path, Some(json!({})))
                    .await
            }
        };
        deny(post(None).await, "No access token provided");
        let basic = reqwest::Client::new()
            .post(format!("{}{path}", app.base))
            .header("authorization", "Basic dXNlcjpwYXNz")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            basic.json::<Value>().await.unwrap(),
            json!({"detail": "No access token provided"})
        );
        deny(post(Some("garbage".into())).await, "Invalid JWT");
        let wrong_secret = raw_token(json!({"w": "w"}), b"another-secret-of-at-least-32-bytes!!");
        deny(post(Some(wrong_secret)).await, "Invalid JWT");
        let none_alg = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none"}"#),
            B64.encode(br#"{"ad":true}"#)
        );
        deny(post(Some(none_alg)).await, "Invalid JWT");
        let s = SECRET.as_bytes();
        for exp in [json!("2020-01-01T00:00:00Z"), json!(1_577_836_800)] {
            deny(
                post(Some(raw_token(json!({"w": "w", "exp": exp}), s))).await,
                "JWT expired",
            );
        }
        for exp in [json!("2999-01-01T00:00:00Z"), json!(32_503_680_000i64)] {
            let r = post(Some(raw_token(json!({"w": "w", "exp": exp}), s))).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        }
        deny(
            post(Some(raw_token(json!({"p": "alice"}), s))).await,
            "Invalid JWT scope: peer/session token missing workspace",
        );
        deny(
            post(Some(raw_token(json!({"s": "s1", "w": ""}), s))).await,
            "Invalid JWT scope: peer/session token missing workspace",
        );
        deny(
            post(Some(key(false, Some("x"), None, None))).await,
            "JWT not permissioned for this resource",
        );
        deny(
            app.call_as(
                Some(&key(false, Some("w"), None, None)),
                Method::POST,
                "/v3/workspaces/list",
                Some(json!({})),
            )
            .await,
            "Resource requires admin privileges",
        );
        let health = app.get("/health").await;
        assert_eq!(health.status, StatusCode::OK);
    }
);

both_engines!(
    create_routes_check_the_body_against_the_key,
    |_unused: TestApp| async move {
        let Some(app) = reconfigure(&_unused).await else {
            return;
        };
        seed(&app).await;
        let ws = key(false, Some("w"), None, None);
        let alice = key(false, Some("w"), Some("alice"), None);
        let s1 = key(false, Some("w"), None, Some("s1"));
        let unauthorized = json!({"detail": "Unauthorized access to resource"});
        let cases: [(&str, &str, Value, StatusCode); 8] = [
            (&ws, "/v3/workspaces", json!({"id": "w"}), StatusCode::OK),
            (
                &ws,
                "/v3/workspaces",
                json!({"id": "other"}),
                StatusCode::UNAUTHORIZED,
            ),
            (
                &alice,
                "/v3/workspaces/w/peers",
                json!({"id": "alice"}),
                StatusCode::OK,
            ),
            (
                &alice,
                "/v3/workspaces/w/peers",
                json!({"id": "carol"}),
                StatusCode::UNAUTHORIZED,
            ),
            (
                &ws,
                "/v3/workspaces/x/peers",
                json!({"id": "carol"}),
                StatusCode::UNAUTHORIZED,
            ),
            (
                &s1,
                "/v3/workspaces/w/sessions",
                json!({"id": "s1"}),
                StatusCode::OK,
            ),
            (
                &s1,
                "/v3/workspaces/w/sessions",
                json!({"id": "s9"}),
                StatusCode::UNAUTHORIZED,
            ),
            (
                &alice,
                "/v3/workspaces/w/sessions",
                json!({"id": "s9"}),
                StatusCode::CREATED,
            ),
        ];
        for (token, path, body, status) in cases {
            let r = app
                .call_as(Some(token), Method::POST, path, Some(body.clone()))
                .await;
            assert_eq!(r.status, status, "{path} {body}: {}", r.body);
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(r.body, unauthorized);
            }
        }
    }
);

both_engines!(
    peer_keys_read_sessions_only_while_members,
    |_unused: TestApp| async move {
        let Some(app) = reconfigure(&_unused).await else {
            return;
        };
        seed(&app).await;
        let alice = key(false, Some("w"), Some("alice"), None);
        let ws = key(false, Some("w"), None, None);
        let list = "/v3/workspaces/w/sessions/s1/messages/list";
        let r = app
            .call_as(Some(&alice), Method::POST, list, Some(json!({})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["total"], 1);
        // Her own configuration yes, someone else's no.
        let own = "/v3/workspaces/w/sessions/s1/peers/alice/config";
        let r = app.call_as(Some(&alice), Method::GET, own, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        app.call_as(
            Some(&ws),
            Method::POST,
            "/v3/workspaces/w/sessions/s1/peers",
            Some(json!({"bob": {}})),
        )
        .await;
        let other = "/v3/workspaces/w/sessions/s1/peers/bob/config";
        let r = app.call_as(Some(&alice), Method::GET, other, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // Member reads never write.
        let write = "/v3/workspaces/w/sessions/s1/messages";
        let r = app
            .call_as(
                Some(&alice),
                Method::POST,
                write,
                Some(json!({"messages": [{"peer_id": "alice", "content": "x"}]})),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = app
            .call_as(
                Some(&ws),
                Method::DELETE,
                "/v3/workspaces/w/sessions/s1/peers",
                Some(json!(["alice"])),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = app
            .call_as(Some(&alice), Method::POST, list, Some(json!({})))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.body["detail"], "JWT not permissioned for this resource");
    }
);

both_engines!(
    keys_endpoint_mints_working_scoped_keys,
    |plain: TestApp| async move {
        // Authentication off: the feature is disabled.
        let r = app_post(&plain, None, "/v3/keys?workspace_id=w").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.body, json!({"detail": "Feature is disabled"}));
        let Some(app) = reconfigure(&plain).await else {
            return;
        };
        seed(&app).await;
        let admin = key(true, None, None, None);
        let ws = key(false, Some("w"), None, None);
        let r = app_post(&app, Some(&ws), "/v3/keys?workspace_id=w").await;
        assert_eq!(r.body["detail"], "Resource requires admin privileges");
        let r = app_post(&app, Some(&admin), "/v3/keys").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.body["detail"],
            "At least one of workspace_id, peer_id, or session_id must be provided"
        );
        let r = app_post(&app, Some(&admin), "/v3/keys?peer_id=alice").await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.body["detail"],
            "workspace_id is required when scoping a key to a peer or session"
        );
        let r = app_post(
            &app,
            Some(&admin),
            "/v3/keys?workspace_id=w&expires_at=soon",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["detail"][0]["loc"], json!(["query", "expires_at"]));

        let r = app_post(
            &app,
            Some(&admin),
            "/v3/keys?workspace_id=w&session_id=s1&expires_at=2999-01-01T00:00:00Z",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let minted = r.body["key"].as_str().unwrap().to_string();
        let payload = minted.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["w"], "w");
        assert_eq!(claims["s"], "s1");
        assert_eq!(claims["exp"], "2999-01-01T00:00:00Z");
        assert!(claims["t"].as_str().unwrap().ends_with('Z'));
        assert!(claims.get("p").is_none() && claims.get("ad").is_none());
        let ok = app
            .call_as(
                Some(&minted),
                Method::POST,
                "/v3/workspaces/w/sessions/s1/messages/list",
                Some(json!({})),
            )
            .await;
        assert_eq!(ok.status, StatusCode::OK);
        let other = app
            .call_as(
                Some(&minted),
                Method::POST,
                "/v3/workspaces/w/sessions/s2/messages/list",
                Some(json!({})),
            )
            .await;
        assert_eq!(other.status, StatusCode::UNAUTHORIZED);

        let r = app_post(
            &app,
            Some(&admin),
            "/v3/keys?workspace_id=w&expires_at=2020-01-01T00:00:00Z",
        )
        .await;
        let expired = r.body["key"].as_str().unwrap();
        let r = app
            .call_as(
                Some(expired),
                Method::POST,
                "/v3/workspaces/w/sessions/list",
                Some(json!({})),
            )
            .await;
        assert_eq!(r.body, json!({"detail": "JWT expired"}));
    }
);

async fn app_post(app: &TestApp, token: Option<&str>, path: &str) -> crate::helpers::Reply {
    app.call_as(token, Method::POST, path, None).await
}
