"""Search through the SDK: workspace, peer and session `search`, filters, limits, the
reference's error for bad input, and deleted sessions never showing up."""

from __future__ import annotations

import os
import time

import pytest
from engram_harness import EngramServer
from honcho import Honcho


def contents(xs) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.content for m in xs]


def seed(honcho: Honcho) -> None:
    alice, bob = honcho.peer("alice"), honcho.peer("bob")
    honcho.session("s1").add_messages(
        [
            alice.message("I baked a pizza with basil"),
            bob.message("Pizza is my favourite food"),
            alice.message("mail user@example.com tomorrow"),
        ]
    )
    honcho.session("s2").add_messages([bob.message("no pizza today, only soup")])


def test_workspace_peer_and_session_search(honcho: Honcho) -> None:
    seed(honcho)
    found = honcho.search("pizza")
    assert sorted(contents(found)) == [
        "I baked a pizza with basil",
        "Pizza is my favourite food",
        "no pizza today, only soup",
    ]
    m = found[0]
    assert m.workspace_id == honcho.workspace_id and len(m.id) == 21
    assert contents(honcho.peer("alice").search("pizza")) == ["I baked a pizza with basil"]
    assert contents(honcho.session("s2").search("pizza")) == ["no pizza today, only soup"]
    assert len(honcho.search("pizza", limit=1)) == 1
    assert contents(honcho.search("pizza", filters={"peer_id": "bob", "session_id": "s1"})) == [
        "Pizza is my favourite food"
    ]
    assert contents(honcho.search("user@example.com")) == ["mail user@example.com tomorrow"]
    assert honcho.session("missing").search("pizza") == []


def test_search_hides_deleted_sessions_at_once(honcho: Honcho) -> None:
    seed(honcho)
    honcho.session("s1").delete()
    assert contents(honcho.search("pizza")) == ["no pizza today, only soup"]
    assert honcho.peer("alice").search("pizza") == []
    assert honcho.session("s1").search("pizza") == []


def test_search_rejects_a_bad_filter(honcho: Honcho, http) -> None:  # type: ignore[no-untyped-def]
    seed(honcho)
    r = http.post(
        f"/v3/workspaces/{honcho.workspace_id}/search",
        json={"query": "pizza", "filters": {"nonsense": 1}},
    )
    assert r.status_code == 422
    assert r.json() == {
        "detail": "Column 'nonsense' is not allowed to be filtered on or does not exist on Message"
    }
    r = http.post(f"/v3/workspaces/{honcho.workspace_id}/search", json={"query": "x", "limit": 0})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "limit"]


async def test_async_search(honcho: Honcho) -> None:
    alice = await honcho.aio.peer("alice")
    session = await honcho.aio.session("s")
    await session.aio.add_messages([alice.message("a sunny afternoon by the lake")])
    assert contents(await honcho.aio.search("lake")) == ["a sunny afternoon by the lake"]
    assert contents(await alice.aio.search("sunny")) == ["a sunny afternoon by the lake"]
    assert contents(await session.aio.search("afternoon")) == ["a sunny afternoon by the lake"]


def test_semantic_search_finds_by_meaning(ws_id: str) -> None:
    """With the built-in model (the test command fetches it), a query with no word in
    common finds a message by meaning once the queue has embedded it."""
    if not os.environ.get("ENGRAM_MODEL_DIR"):
        assert not os.environ.get("CI"), "CI must provide the embedding model"
        pytest.skip("no embedding model (scripts/fetch-model.sh)")
    if os.environ.get("ENGRAM_URL"):
        pytest.skip("needs a server of its own with the model loaded")
    srv = EngramServer("engram-semantic")
    srv.env["ENGRAM_EMBEDDINGS"] = "local"
    try:
        srv.start()
        honcho = Honcho(base_url=srv.url, workspace_id=ws_id, api_key="unused", max_retries=0, timeout=30)
        alice = honcho.peer("alice")
        pets = honcho.session("pets")
        pets.add_messages(
            [
                alice.message("My cat loves sleeping on the warm windowsill."),
                alice.message("The quarterly budget review is due on Friday."),
            ]
        )
        # What benchmark harnesses and agents do: wait for the queue to drain, then
        # search once. The embedding is background work, so it must show there.
        status = honcho.queue_status()
        assert status.total_work_units >= 1, status
        deadline = time.monotonic() + 60
        while status.pending_work_units or status.in_progress_work_units:
            assert time.monotonic() < deadline, f"queue never drained: {status}"
            time.sleep(0.2)
            status = honcho.queue_status()
        assert status.completed_work_units == status.total_work_units, status
        assert pets.queue_status().total_work_units == status.total_work_units
        found = contents(honcho.search("feline", limit=1))
        assert found == ["My cat loves sleeping on the warm windowsill."]
        srv.stop()
    finally:
        srv.cleanup()
