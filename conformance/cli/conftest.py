"""The official `honcho` CLI (honcho-cli) against a spawned engram binary.

The server comes from the SDK suite's harness (`../python/engram_harness.py`, standard
library only), so it runs on SQLite or, with ENGRAM_TEST_PG_URL, on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from engram_harness import EngramServer, engine_name  # noqa: E402


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"engram: spawned binary, engine={engine_name()}"]


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    srv = EngramServer("engram-cli")
    srv.env["ENGRAM_EMBEDDINGS"] = "off"
    try:
        srv.start()
        yield srv.url
        rc = srv.stop()
        assert rc == 0, f"engram exited with {rc} after SIGTERM\n{srv.log_tail()}"
    finally:
        srv.cleanup()


class Cli:
    """Runs `honcho <args> --json` with its own config directory and workspace."""

    def __init__(self, base_url: str, config_dir: Path, workspace: str) -> None:
        self.workspace = workspace
        exe = shutil.which("honcho", path=str(Path(sys.executable).parent))
        assert exe, "honcho-cli is not installed in this venv"
        self.exe = exe
        self.env = {
            **os.environ,
            "HONCHO_CONFIG_DIR": str(config_dir),
            "HONCHO_BASE_URL": base_url,
            "HONCHO_API_KEY": "unused-without-auth",
            "HONCHO_WORKSPACE_ID": workspace,
            "NO_COLOR": "1",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.exe, *args, "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def ok(self, *args: str) -> object:
        done = self.run(*args)
        assert done.returncode == 0, (
            f"honcho {' '.join(args)} exited {done.returncode}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return json.loads(done.stdout)


@pytest.fixture
def cli(base_url: str, tmp_path: Path) -> Cli:
    return Cli(base_url, tmp_path, f"ws-{uuid.uuid4().hex[:12]}")
