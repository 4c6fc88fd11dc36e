//! Outside the route matrix: CORS preflights, and the binary's own handling of the
//! auth settings (startup refusal, `engram token`).

use engram_server::AppState;
use reqwest::{Method, StatusCode};

use crate::auth::{SECRET, secret, with_auth};
use crate::helpers::TestApp;

#[tokio::test]
async fn cors_answers_preflight_for_configured_origins_only() {
    let app = TestApp::sqlite_configured(|s| AppState {
        cors_origins: vec!["https://app.example".parse().unwrap()],
        ..with_auth(s)
    })
    .await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(Method::OPTIONS, format!("{}/v3/workspaces/list", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

fn engram() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_engram"))
}

#[test]
fn startup_refuses_auth_without_a_strong_secret() {
    let dir = tempfile::tempdir().unwrap();
    // Honcho's boolean spellings all switch it on.
    for (switch, secret, message) in [
        (
            "True",
            None,
            "AUTH_JWT_SECRET: required when AUTH_USE_AUTH is true",
        ),
        (
            "1",
            Some("short"),
            "AUTH_JWT_SECRET: must be at least 32 bytes, got 5",
        ),
    ] {
        let mut cmd = engram();
        cmd.args(["serve", "--bind", "127.0.0.1:0"])
            .env("AUTH_USE_AUTH", switch)
            .env("ENGRAM_DATA_DIR", dir.path())
            .env_remove("AUTH_JWT_SECRET");
        if let Some(s) = secret {
            cmd.env("AUTH_JWT_SECRET", s);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
        if let Some(s) = secret {
            assert!(!stderr.contains(s), "the secret is never printed: {stderr}");
        }
    }
}

#[test]
fn token_command_mints_the_same_keys() {
    let out = engram()
        .args(["token", "--workspace", "w", "--peer", "alice"])
        .env("AUTH_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = engram_server::auth::decode(&secret(), token.trim(), 0).unwrap();
    assert_eq!(claims.workspace.as_deref(), Some("w"));
    assert_eq!(claims.peer.as_deref(), Some("alice"));
    assert!(!claims.admin);
    let refused = engram()
        .args(["token", "--peer", "alice"])
        .env("AUTH_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!refused.status.success());
}
