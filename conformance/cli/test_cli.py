"""The official CLI's destructive commands on names that were used before: engram must
treat a deleted session's id as never used, every time, also after its purge finished
(the case that made `honcho session delete` fail with a 500)."""

from __future__ import annotations

import time

import httpx

from conftest import Cli


def wait_for_purges(base_url: str, workspace: str, done: int) -> None:
    """Until `done` purges of `workspace` have completed and none is queued."""
    deadline = time.monotonic() + 30
    while True:
        status = httpx.get(f"{base_url}/v3/workspaces/{workspace}/queue/status", timeout=10)
        assert status.status_code == 200, status.text
        d = status.json()["deletions"]
        if d["completed"] >= done and d["pending"] == 0 and d["in_progress"] == 0:
            assert d["failed"] == 0, d
            return
        assert time.monotonic() < deadline, f"purges did not finish: {d}"
        time.sleep(0.1)


def session_ids(cli: Cli) -> list[str]:
    return [s["id"] for s in cli.ok("session", "list")]


def test_a_session_name_reused_after_its_purge_deletes_every_time(cli: Cli, base_url: str) -> None:
    cli.ok("workspace", "create", cli.workspace)
    for round_ in range(1, 4):
        cli.ok("session", "create", "s")
        cli.ok("message", "create", f"round {round_}", "-p", "alice", "-s", "s")
        messages = cli.ok("session", "view", "s")
        assert f"round {round_}" in str(messages)
        assert cli.ok("session", "delete", "s", "--yes") == {"deleted": "s"}
        assert "s" not in session_ids(cli)
        wait_for_purges(base_url, cli.workspace, round_)
    cli.ok("session", "create", "s")
    assert "round" not in str(cli.ok("session", "view", "s"))


def test_workspace_delete_cascade_with_a_reused_session_name(cli: Cli, base_url: str) -> None:
    cli.ok("workspace", "create", cli.workspace)
    cli.ok("session", "create", "s")
    cli.ok("session", "delete", "s", "--yes")
    wait_for_purges(base_url, cli.workspace, 1)
    for name in ("s", "t"):
        cli.ok("session", "create", name)
        cli.ok("message", "create", "hello", "-p", "bob", "-s", name)

    dry = cli.ok("workspace", "delete", cli.workspace, "--dry-run")
    assert sorted(dry["session_ids"]) == ["s", "t"]
    result = cli.ok("workspace", "delete", cli.workspace, "--yes", "--cascade")
    assert result["status"] == "accepted"
    assert sorted(result["deleted_sessions"]) == ["s", "t"]

    listed = [w["id"] for w in cli.ok("workspace", "list")]
    assert cli.workspace not in listed
