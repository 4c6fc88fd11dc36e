//! The settings file and the command line's progress output, through the real binary:
//! a file's keys set what the environment would, the environment wins over the file,
//! a bad key stops startup with one line naming it, and progress bars never reach a
//! standard error that is not a terminal.

use std::path::Path;
use std::process::Stdio;

use reqwest::{Method, StatusCode};

use crate::binary::{Engine, Server};

async fn pocketpaw_list(server: &Server, token: &str) -> StatusCode {
    server
        .send(Method::GET, "/api/v1/sessions", None, Some(token))
        .await
        .status
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write settings file");
    path
}

#[tokio::test]
async fn a_settings_file_sets_what_the_environment_would_and_the_environment_wins() {
    let engine = Engine::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "custom.toml",
        "ENGRAM_BIND = \"127.0.0.1:0\"\nENGRAM_LOG = \"info\"\n\
         ENGRAM_POCKETPAW_TOKEN = \"token-from-file\"\n",
    );
    let config = file.to_str().expect("utf-8 path");

    let mut cmd = engine.command(&["serve", "--config", config]);
    cmd.env_remove("ENGRAM_LOG").env("NO_COLOR", "1");
    let server = Server::spawn(cmd, "engram listening").await;
    assert_eq!(
        pocketpaw_list(&server, "token-from-file").await,
        StatusCode::OK
    );
    assert_eq!(
        pocketpaw_list(&server, "other").await,
        StatusCode::UNAUTHORIZED
    );
    drop(server);

    let mut cmd = engine.command(&["serve"]);
    cmd.env_remove("ENGRAM_LOG")
        .env("NO_COLOR", "1")
        .env("ENGRAM_CONFIG", config)
        .env("ENGRAM_POCKETPAW_TOKEN", "token-from-env");
    let server = Server::spawn(cmd, "engram listening").await;
    assert_eq!(
        pocketpaw_list(&server, "token-from-env").await,
        StatusCode::OK
    );
    assert_eq!(
        pocketpaw_list(&server, "token-from-file").await,
        StatusCode::UNAUTHORIZED
    );
    drop(server);

    // Without a named file, ./engram.toml is read when it exists.
    write(
        dir.path(),
        "engram.toml",
        &std::fs::read_to_string(&file).expect("read back"),
    );
    let mut cmd = engine.command(&["serve"]);
    cmd.env_remove("ENGRAM_LOG")
        .env("NO_COLOR", "1")
        .current_dir(dir.path());
    let server = Server::spawn(cmd, "engram listening").await;
    assert_eq!(
        pocketpaw_list(&server, "token-from-file").await,
        StatusCode::OK
    );
}

#[test]
fn a_bad_settings_file_stops_startup_with_one_line_naming_the_key() {
    let engine = Engine::sqlite();
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, expected) in [
        (
            "ENGRAM_BINDD = \"127.0.0.1:0\"\n",
            "unknown setting ENGRAM_BINDD",
        ),
        ("ENGRAM_PURGE_BATCH = 0\n", "ENGRAM_PURGE_BATCH: "),
        ("ENGRAM_BIND = [\n", "not valid TOML"),
    ] {
        let file = write(dir.path(), "bad.toml", text);
        let out = engine
            .command(&["serve", "--config", file.to_str().expect("utf-8 path")])
            .stdin(Stdio::null())
            .output()
            .expect("run engram");
        assert_eq!(out.status.code(), Some(1), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains("bad.toml"), "{stderr}");
        assert!(lines[0].contains(expected), "{expected} not in {stderr}");
    }
    let missing = engine
        .command(&["verify", "--config", "/nonexistent/engram.toml"])
        .output()
        .expect("run engram");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ENGRAM_CONFIG"));
}

#[tokio::test]
async fn progress_stays_off_a_standard_error_that_is_not_a_terminal() {
    let engine = Engine::sqlite();
    let server = Server::start(&engine, None).await;
    for path in ["/v3/workspaces", "/v3/workspaces/w/sessions"] {
        let body = serde_json::json!({ "id": if path.ends_with("sessions") { "s" } else { "w" } });
        let reply = server.send(Method::POST, path, Some(body), None).await;
        assert!(reply.status.is_success(), "{}", reply.text);
    }
    drop(server);

    let dir = tempfile::tempdir().expect("tempdir");
    let dump = dir.path().join("w.jsonl");
    let export = engine
        .command(&[
            "export",
            "--workspace",
            "w",
            "-o",
            dump.to_str().expect("utf-8"),
        ])
        .output()
        .expect("run engram export");
    assert!(export.status.success());
    assert_eq!(
        String::from_utf8_lossy(&export.stderr),
        "exported 1 session(s), 0 message(s)\n"
    );
    let verify = engine
        .command(&["verify"])
        .output()
        .expect("run engram verify");
    assert!(verify.status.success());
    assert!(
        !verify.stderr.iter().any(|b| *b == b'\r' || *b == 0x1b),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
