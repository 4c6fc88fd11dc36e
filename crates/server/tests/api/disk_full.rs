//! SQLite when its storage fails: the real `engram serve` on a small tmpfs of its own.
//! A write that cannot be made durable is a 507 (disk full) in the reference's shape,
//! never a 2xx and never a 500; nothing rejected is visible afterwards; reads keep
//! working during the condition; writes work again once space returns, without a
//! restart; and a data directory that cannot be written stops startup with one line.
//!
//! Real conditions need a mount, so these tests need root (or CAP_SYS_ADMIN). Without it
//! they fail under `CI=true` and are skipped, loudly, elsewhere. An unprivileged fallback
//! (`RLIMIT_FSIZE`) was rejected: it only caps file size, so it cannot exercise the
//! case that matters, space returning to a running server, nor a read-only mount.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::binary::{Engine, Server};

/// A tmpfs mounted over a directory, unmounted when dropped.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// `None` (with the reason printed) when this process may not mount.
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { at: at.to_owned() }),
            other => {
                let reason = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must be able to mount a tmpfs (run as root): {reason}"
                );
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: cannot mount a tmpfs ({reason}); disk-full tests not run"
                );
                None
            }
        }
    }

    fn remount(&self, mode: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.at)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "remount {mode}: {out:?}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// Fills the file system holding `path` to the last byte.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(28), "filler stopped by {e}");
            break;
        }
    }
    // The last partial chunk may have landed; what matters is that nothing more fits.
    let _ = file.write_all(&[0u8; 4096]);
}

fn sqlite_dir(engine: &Engine) -> &Path {
    match engine {
        Engine::Sqlite(dir) => dir.path(),
        Engine::Postgres(..) => unreachable!("these tests are about SQLite files"),
    }
}

async fn start(engine: &Engine) -> Server {
    Server::start_with(engine, None, &[("ENGRAM_EMBEDDINGS", "off")]).await
}

async fn post_message(server: &Server, session: &str, content: &str) -> crate::binary::Reply {
    server
        .send(
            Method::POST,
            &format!("/v3/workspaces/w/sessions/{session}/messages"),
            Some(json!({"messages": [{"peer_id": "p", "content": content}]})),
            None,
        )
        .await
}

/// Every message content of session `s`, in order.
async fn contents(server: &Server) -> Vec<String> {
    let mut out = Vec::new();
    for page in 1.. {
        let r = server
            .send(
                Method::POST,
                &format!("/v3/workspaces/w/sessions/s/messages/list?page={page}&size=100"),
                Some(json!({})),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "list: {}", r.text);
        let items = r.body["items"].as_array().expect("items").clone();
        out.extend(
            items
                .iter()
                .map(|m| m["content"].as_str().expect("content").to_string()),
        );
        if page >= r.body["pages"].as_i64().expect("pages") {
            break;
        }
    }
    out
}

/// `label` padded to a size that fills a small disk in a few dozen writes.
fn content(label: &str) -> String {
    format!("{label} {}", "x".repeat(24 * 1024))
}

fn label(content: &str) -> &str {
    content.split(' ').next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_disk_full_is_507_and_recovers() {
    let engine = Engine::sqlite();
    let Some(_mount) = Tmpfs::mount(sqlite_dir(&engine), "6m") else {
        return;
    };
    let server = start(&engine).await;
    let mut acked: Vec<String> = Vec::new();
    for i in 0..5 {
        let r = post_message(&server, "s", &content(&format!("before-{i}"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        acked.push(format!("before-{i}"));
    }
    for i in 0..3 {
        let r = post_message(&server, "doomed", &content(&format!("doomed-{i}"))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // Leave room for a few writes, so the disk fills up under concurrent writers in
    // the middle of group commits rather than before the first one.
    let filler = sqlite_dir(&engine).join("filler");
    fill(&filler);
    let keep = std::fs::metadata(&filler).expect("filler").len() - 768 * 1024;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .and_then(|f| f.set_len(keep))
        .expect("shrink filler");

    // A delete fits in what is left; its purge (and the WAL checkpoint after it) then
    // runs while the writers below fill the disk, and must neither wedge nor give up.
    let delete = server
        .send(
            Method::DELETE,
            "/v3/workspaces/w/sessions/doomed",
            None,
            None,
        )
        .await;
    assert!(
        matches!(
            delete.status,
            StatusCode::ACCEPTED | StatusCode::INSUFFICIENT_STORAGE
        ),
        "delete while nearly full: {} {}",
        delete.status,
        delete.text
    );
    let server = std::sync::Arc::new(server);
    let mut writers = Vec::new();
    for w in 0..6 {
        let server = server.clone();
        writers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..10 {
                let label = format!("w{w}-{i}");
                let r = post_message(&server, "s", &content(&label)).await;
                outcomes.push((label, r));
            }
            outcomes
        }));
    }
    let mut rejected = Vec::new();
    for writer in writers {
        for (label, r) in writer.await.expect("writer") {
            match r.status {
                StatusCode::CREATED => acked.push(label),
                StatusCode::INSUFFICIENT_STORAGE => {
                    assert_eq!(
                        r.body,
                        json!({"detail": "Insufficient storage: the database's disk is full, so nothing was saved"}),
                        "{label}"
                    );
                    assert!(r.headers.contains_key("retry-after"), "{label}");
                    rejected.push(label);
                }
                other => panic!("{label}: {other} {}", r.text),
            }
        }
    }
    eprintln!(
        "while filling: {} writes acknowledged, {} refused with 507; delete: {}",
        acked.len(),
        rejected.len(),
        delete.status
    );
    assert!(
        !rejected.is_empty(),
        "the disk never filled up ({} writes acknowledged)",
        acked.len()
    );

    // During the condition: reads still answer, and show exactly what was acknowledged.
    let seen = contents(&server).await;
    let labels: Vec<&str> = seen.iter().map(|c| label(c)).collect();
    for a in &acked {
        assert!(labels.contains(&a.as_str()), "acknowledged {a} missing");
    }
    for r in &rejected {
        assert!(!labels.contains(&r.as_str()), "rejected {r} visible");
    }
    let got = server
        .send(
            Method::GET,
            "/v3/workspaces/w/sessions/s/context?tokens=500",
            None,
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);

    // Space returns: the same process writes again, with no restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let r = post_message(&server, "s", &content("after")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    acked.push("after".into());
    if delete.status != StatusCode::ACCEPTED {
        let again = server
            .send(
                Method::DELETE,
                "/v3/workspaces/w/sessions/doomed",
                None,
                None,
            )
            .await;
        assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    }
    drained(&server).await;

    // And after a hard kill, exactly the acknowledged writes are on disk.
    let server = std::sync::Arc::into_inner(server).expect("writers finished");
    drop(server);
    let verify = engine.command(&["verify"]).output().expect("verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{report}");
    assert!(report.contains("store is clean"), "{report}");
    let server = start(&engine).await;
    let seen = contents(&server).await;
    let mut labels: Vec<String> = seen.iter().map(|c| label(c).to_string()).collect();
    labels.sort();
    acked.sort();
    assert_eq!(labels, acked);
}

/// Waits until the purge of `doomed` has completed and the queue has no work left.
async fn drained(server: &Server) {
    let mut last = Value::Null;
    for _ in 0..600 {
        let r = server
            .send(Method::GET, "/v3/workspaces/w/queue/status", None, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["deletions"]["completed"] == 1
            && r.body["pending_work_units"] == 0
            && r.body["in_progress_work_units"] == 0
        {
            return;
        }
        last = r.body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("queue never drained after space returned: {last}");
}

#[tokio::test]
async fn sqlite_read_only_data_dir_stops_startup_with_one_line() {
    let engine = Engine::sqlite();
    let Some(mount) = Tmpfs::mount(sqlite_dir(&engine), "4m") else {
        return;
    };
    // An existing database on a file system that has since become read-only.
    let server = start(&engine).await;
    let r = post_message(&server, "s", "hello").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    drop(server);
    mount.remount("ro");
    let mut serve = engine.command(&["serve", "--bind", "127.0.0.1:0"]);
    let out = must_exit(serve.env("ENGRAM_EMBEDDINGS", "off"));
    assert!(
        !out.status.success(),
        "engram started on a read-only directory"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("ENGRAM_DATA_DIR") && lines[0].contains("Read-only file system"),
        "{stderr}"
    );
    // A data directory that does not exist yet and cannot be made says so too.
    let out = must_exit(
        Command::new(env!("CARGO_BIN_EXE_engram"))
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(sqlite_dir(&engine).join("new"))
            .env("ENGRAM_EMBEDDINGS", "off")
            .env_remove("DB_CONNECTION_URI"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    mount.remount("rw");
}

/// Runs a command that must stop on its own: a server that starts anyway is killed
/// after a while and fails the test rather than hanging it.
fn must_exit(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run engram");
    for _ in 0..300 {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    panic!(
        "engram kept running: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
