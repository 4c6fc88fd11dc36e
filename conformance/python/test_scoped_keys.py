"""Scoped keys through the official SDK: a server with AUTH_USE_AUTH on, an admin key
from `engram token`, and workspace-, peer- and session-scoped keys minted through
`POST /v3/keys`. Each key works inside its scope and is refused outside it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest
from honcho import AuthenticationError, Honcho

from conftest import uid
from engram_harness import EngramServer

SECRET = "conformance-secret-that-is-at-least-32-bytes"


@pytest.fixture(scope="module")
def server() -> Iterator[EngramServer]:
    srv = EngramServer("engram-auth")
    srv.env["AUTH_USE_AUTH"] = "true"
    srv.env["AUTH_JWT_SECRET"] = SECRET
    try:
        srv.start()
        yield srv
        srv.stop()
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def admin_key(server: EngramServer) -> str:
    out = subprocess.run(
        [server.bin, "token", "--admin"], env=server.env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def mint(server: EngramServer, admin_key: str, **scope: str) -> str:
    r = httpx.post(
        f"{server.url}/v3/keys", params=scope, headers={"Authorization": f"Bearer {admin_key}"}
    )
    assert r.status_code == 200, r.text
    return r.json()["key"]


def client(server: EngramServer, ws: str, key: str) -> Honcho:
    return Honcho(base_url=server.url, workspace_id=ws, api_key=key, max_retries=0, timeout=30)


def refused(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AuthenticationError) as info:
        call()
    assert info.value.status == 401


@pytest.fixture(scope="module")
def world(server: EngramServer, admin_key: str) -> dict[str, str]:
    """A workspace where alice is a member of s1 (with one message) and bob of s2."""
    ws = uid("ws")
    admin = client(server, ws, admin_key)
    alice, bob = admin.peer("alice"), admin.peer("bob")
    admin.session("s1", peers=["alice"]).add_messages(alice.message("hello from alice"))
    admin.session("s2", peers=["bob"]).add_messages(bob.message("hello from bob"))
    return {"ws": ws}


def test_without_a_key_nothing_but_health(server: EngramServer) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200
    r = httpx.post(f"{server.url}/v3/workspaces/list", json={})
    assert r.status_code == 401 and r.json() == {"detail": "No access token provided"}


def test_workspace_key(server: EngramServer, admin_key: str, world: dict[str, str]) -> None:
    ws = world["ws"]
    key = mint(server, admin_key, workspace_id=ws)
    h = client(server, ws, key)
    assert sorted(p.id for p in h.peers()) == ["alice", "bob"]
    s = h.session("s3")
    s.add_messages(h.peer("carol").message("new"))
    assert [m.content for m in s.messages()] == ["new"]
    refused(lambda: list(client(server, uid("other"), key).sessions()))


def test_peer_key_reads_its_sessions_only(
    server: EngramServer, admin_key: str, world: dict[str, str]
) -> None:
    ws = world["ws"]
    key = mint(server, admin_key, workspace_id=ws, peer_id="alice")
    h = client(server, ws, key)
    assert "s1" in [s.id for s in h.peer("alice").sessions()]
    s1 = h.session("s1")
    assert [m.content for m in s1.messages()] == ["hello from alice"]
    refused(lambda: s1.add_messages(h.peer("alice").message("write")))
    refused(lambda: list(h.session("s2").messages()))
    refused(lambda: list(h.peer("bob").sessions()))
    refused(lambda: list(h.peers()))


def test_session_key_stays_in_its_session(
    server: EngramServer, admin_key: str, world: dict[str, str]
) -> None:
    ws = world["ws"]
    key = mint(server, admin_key, workspace_id=ws, session_id="s1")
    h = client(server, ws, key)
    s1 = h.session("s1")
    s1.add_messages(h.peer("alice").message("from the session key"))
    assert [m.content for m in s1.messages()][-1] == "from the session key"
    refused(lambda: list(h.session("s2").messages()))
    refused(lambda: list(h.sessions()))
    refused(lambda: h.session("s9"))
