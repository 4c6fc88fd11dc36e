"""Durability: SIGKILL the server mid-stream; every acknowledged message must survive.

Spawns its own engram (ENGRAM_BIN; engine from ENGRAM_TEST_PG_URL), so it is skipped when
ENGRAM_URL points at an external server.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import httpx
import pytest

from engram_harness import EngramServer

pytestmark = [
    pytest.mark.crash,
    pytest.mark.skipif(bool(os.environ.get("ENGRAM_URL")), reason="needs to spawn and kill engram itself"),
]

WRITERS = 6
SESSIONS = 3  # two writers per session
BATCH = 5
KILL_AFTER_S = float(os.environ.get("ENGRAM_CRASH_KILL_AFTER", "2.0"))


def list_all(c: httpx.Client, ws: str, sess: str) -> list[dict]:
    out: list[dict] = []
    page = 1
    while True:
        r = c.post(f"/v3/workspaces/{ws}/sessions/{sess}/messages/list", params={"page": page, "size": 100}, json={})
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["items"])
        if page >= body["pages"]:
            return out
        page += 1


@pytest.fixture
def server():
    srv = EngramServer("engram-crash")
    try:
        yield srv
    finally:
        srv.cleanup()


def test_sigkill_keeps_acknowledged_messages(server: EngramServer) -> None:
    url = server.start()
    ws = "crash-" + uuid.uuid4().hex[:8]
    with httpx.Client(base_url=url, timeout=10) as c:
        assert c.post("/v3/workspaces", json={"id": ws}).status_code in (200, 201)
        for s in range(SESSIONS):
            r = c.post(f"/v3/workspaces/{ws}/sessions", json={"id": f"s{s}", "peers": {f"w{w}": {} for w in range(WRITERS)}})
            assert r.status_code in (200, 201), r.text

    acked: dict[int, list[tuple[str, str]]] = {w: [] for w in range(WRITERS)}  # writer -> [(id, content)]
    attempted: dict[int, list[list[str]]] = {w: [] for w in range(WRITERS)}  # writer -> batches of contents
    errors: list[str] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        sess = f"s{w % SESSIONS}"
        with httpx.Client(base_url=url, timeout=10) as c:
            b = 0
            while not stop.is_set():
                batch = [f"w{w}-b{b}-m{j}" for j in range(BATCH)]
                attempted[w].append(batch)
                try:
                    r = c.post(
                        f"/v3/workspaces/{ws}/sessions/{sess}/messages",
                        json={"messages": [{"peer_id": f"w{w}", "content": t, "metadata": {"b": b}} for t in batch]},
                    )
                except httpx.HTTPError:
                    return  # server gone
                if 200 <= r.status_code < 300:
                    got = r.json()
                    if [m["content"] for m in got] != batch:
                        errors.append(f"writer {w} batch {b}: response order {got!r}")
                    acked[w].extend((m["id"], m["content"]) for m in got)
                elif r.status_code >= 500:
                    errors.append(f"writer {w}: HTTP {r.status_code} {r.text[:200]}")
                    return
                b += 1

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(KILL_AFTER_S)
    server.kill()  # SIGKILL while writers are mid-request
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    total_acked = sum(len(v) for v in acked.values())
    assert total_acked >= WRITERS * BATCH, f"too few writes acknowledged before the kill ({total_acked})"

    url2 = server.start()
    with httpx.Client(base_url=url2, timeout=30) as c:
        sent_batches = {
            tuple(batch): w for w in range(WRITERS) for batch in attempted[w]
        }
        content_to_batch = {t: batch for batch in sent_batches for t in batch}
        for s in range(SESSIONS):
            listed = list_all(c, ws, f"s{s}")
            ids = [m["id"] for m in listed]
            assert len(ids) == len(set(ids)), "duplicate message ids after restart"
            pos = {m["id"]: k for k, m in enumerate(listed)}
            by_content = {m["content"]: m for m in listed}
            assert len(by_content) == len(listed), "duplicate contents after restart"
            for w in [w for w in range(WRITERS) if w % SESSIONS == s]:
                # every acknowledged message is there, same id, in acknowledgement order
                missing = [(i, t) for i, t in acked[w] if i not in pos]
                assert not missing, f"writer {w}: {len(missing)} acknowledged messages lost, e.g. {missing[:3]}"
                order = [pos[i] for i, _ in acked[w]]
                assert order == sorted(order), f"writer {w}: order differs from acknowledgement order"
                for i, t in acked[w]:
                    assert listed[pos[i]]["content"] == t and listed[pos[i]]["peer_id"] == f"w{w}"
            # no phantom messages; batches are atomic (all or nothing) and contiguous per batch
            seen_batches: set[tuple[str, ...]] = set()
            for m in listed:
                batch = content_to_batch.get(m["content"])
                assert batch is not None, f"unexpected message {m['content']!r}"
                seen_batches.add(batch)
            for batch in seen_batches:
                present = [t in by_content for t in batch]
                assert all(present), f"partially persisted batch {batch}: {present}"
                p = [pos[by_content[t]["id"]] for t in batch]
                assert p == list(range(p[0], p[0] + len(batch))), f"batch {batch} not contiguous: {p}"

        # seq_in_session survives the crash gap-free (1..n) and follows list order
        stored = server.stored_sequences(ws)
        for s in range(SESSIONS):
            rows = stored.get(f"s{s}", [])
            assert [seq for _, seq in rows] == list(range(1, len(rows) + 1)), f"s{s}: seq_in_session not gap-free"
            assert [i for i, _ in rows] == [m["id"] for m in list_all(c, ws, f"s{s}")]

        # the restarted server keeps accepting writes after the recovered ones
        r = c.post(f"/v3/workspaces/{ws}/sessions/s0/messages", json={"messages": [{"peer_id": "w0", "content": "after"}]})
        assert r.status_code == 201, r.text
        assert list_all(c, ws, "s0")[-1]["content"] == "after"
    assert server.stop() == 0


def test_sigterm_is_graceful_and_data_survives(server: EngramServer) -> None:
    url = server.start()
    ws = "term-" + uuid.uuid4().hex[:8]
    with httpx.Client(base_url=url, timeout=10) as c:
        r = c.post(
            f"/v3/workspaces/{ws}/sessions/s/messages",
            json={"messages": [{"peer_id": "p", "content": f"m{i}"} for i in range(10)]},
        )
        assert r.status_code == 201, r.text
        r = c.put(f"/v3/workspaces/{ws}/peers/p", json={"metadata": {"k": "v"}})
        assert r.status_code == 200, r.text
    rc = server.stop()
    assert rc == 0, f"exit code {rc} after SIGTERM\n{server.log_tail()}"
    url = server.start()
    with httpx.Client(base_url=url, timeout=10) as c:
        assert [m["content"] for m in list_all(c, ws, "s")] == [f"m{i}" for i in range(10)]
        r = c.post(f"/v3/workspaces/{ws}/peers", json={"id": "p"})
        assert r.status_code == 200 and r.json()["metadata"] == {"k": "v"}
    assert server.stop() == 0


def test_sigkill_mid_purge_resumes_after_restart(server: EngramServer) -> None:
    """Deletion survives a crash: the purge of a large session is interrupted by SIGKILL,
    and after restart it is resumed (the dead worker's lease expires) and completes,
    leaving `engram verify` clean and the other session untouched."""
    # Small purge batches make the purge take long enough for the kill to land inside it.
    server.env["ENGRAM_PURGE_BATCH"] = "20"
    url = server.start()
    ws = "purge-" + uuid.uuid4().hex[:8]
    with httpx.Client(base_url=url, timeout=30) as c:
        for b in range(200):
            r = c.post(
                f"/v3/workspaces/{ws}/sessions/big/messages",
                json={"messages": [{"peer_id": "p", "content": f"m{b}-{i} " + "x" * 150} for i in range(100)]},
            )
            assert r.status_code == 201, r.text
        r = c.post(f"/v3/workspaces/{ws}/sessions/small/messages", json={"messages": [{"peer_id": "p", "content": "keep me"}]})
        assert r.status_code == 201
        r = c.delete(f"/v3/workspaces/{ws}/sessions/big")
        assert r.status_code == 202 and r.json() == {"message": "Session deleted successfully"}
    server.kill()  # at once: the purge has started but is far from done

    url = server.start()
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post(f"/v3/workspaces/{ws}/sessions/big/messages/list", json={})
        assert r.json()["total"] == 0, "the deleted session stays invisible across the crash"
        assert server.leftover_rows(ws) > 0, "the kill must interrupt the purge for this test to mean anything"
        deadline = time.monotonic() + 90
        while server.leftover_rows(ws) > 0:
            assert time.monotonic() < deadline, "purge did not complete after restart"
            time.sleep(0.5)
        result = server.verify()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "store is clean" in result.stdout
        assert server.stored_sequences(ws).get("big") is None, "no message row of the purged session is left"
        listed = c.post(f"/v3/workspaces/{ws}/sessions/small/messages/list", json={}).json()
        assert [m["content"] for m in listed["items"]] == ["keep me"]
    assert server.stop() == 0
