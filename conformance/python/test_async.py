"""The same surface through the SDK's async API (`client.aio`, `peer.aio`, `session.aio`)."""

from __future__ import annotations

import asyncio
import datetime as dt

from conftest import uid
from honcho import Honcho
from honcho.api_types import PeerConfig, SessionConfiguration, SessionPeerConfig, SummaryConfiguration


async def test_async_workspace_and_peers(honcho: Honcho) -> None:
    await honcho.aio.set_metadata({"async": True})
    assert await honcho.aio.get_metadata() == {"async": True}
    cfg = await honcho.aio.get_configuration()
    assert cfg is not None

    alice = await honcho.aio.peer("alice", metadata={"r": 1}, configuration=PeerConfig(observe_me=False))
    assert alice.metadata == {"r": 1}
    await alice.aio.set_metadata({"r": 2})
    assert await alice.aio.get_metadata() == {"r": 2}
    await alice.aio.set_configuration(PeerConfig(observe_me=True))
    assert (await alice.aio.get_configuration()).observe_me is True
    assert await alice.aio.get_card() is None
    assert await alice.aio.set_card(["async card"]) == ["async card"]
    assert await alice.aio.get_card() == ["async card"]

    await asyncio.gather(*(honcho.aio.peer(f"c{i}") for i in range(5)))
    page = await honcho.aio.peers(size=2)
    assert page.total == 6 and page.pages == 3
    got = [p.id async for p in page]
    assert got[0] == "alice" and sorted(got[1:]) == [f"c{i}" for i in range(5)]
    filtered = await honcho.aio.peers(filters={"id": "alice"})
    assert [p.id async for p in filtered] == ["alice"]

    ws_page = await honcho.aio.workspaces(filters={"id": honcho.workspace_id})
    assert [w async for w in ws_page] == [honcho.workspace_id]


async def test_async_sessions_and_messages(honcho: Honcho) -> None:
    alice = await honcho.aio.peer("alice")
    bob = await honcho.aio.peer("bob")
    s = await honcho.aio.session(
        "as1",
        metadata={"k": "v"},
        configuration=SessionConfiguration(summary=SummaryConfiguration(enabled=False)),
        peers=[("alice", SessionPeerConfig(observe_others=True))],
    )
    assert s.metadata == {"k": "v"}
    await s.aio.add_peers(bob)
    assert sorted(p.id for p in await s.aio.peers()) == ["alice", "bob"]
    assert (await s.aio.get_peer_configuration("alice")).observe_others is True
    await s.aio.set_peer_configuration("bob", SessionPeerConfig(observe_me=False))
    assert (await s.aio.get_peer_configuration("bob")).observe_me is False
    await s.aio.set_metadata({"k": "w"})
    assert await s.aio.get_metadata() == {"k": "w"}

    msgs = await s.aio.add_messages(
        [
            alice.message("first", metadata={"i": 0}),
            bob.message("second", created_at=dt.datetime(2024, 5, 5, tzinfo=dt.timezone.utc)),
        ]
    )
    assert [m.content for m in msgs] == ["first", "second"]
    more = await s.aio.add_messages([alice.message(f"m{i}") for i in range(60)])
    assert len(more) == 60

    page = await s.aio.messages()
    assert page.total == 62 and len(page) == 50
    all_msgs = [m.content async for m in page]
    assert all_msgs == ["first", "second"] + [f"m{i}" for i in range(60)]
    rev = await s.aio.messages(reverse=True, size=5)
    assert [m.content for m in rev.items] == [f"m{i}" for i in range(59, 54, -1)]
    bobs = await s.aio.messages(filters={"peer_id": "bob"})
    assert [m.content for m in bobs.items] == ["second"]

    got = await s.aio.get_message(msgs[0].id)
    assert got.content == "first" and got.metadata == {"i": 0}
    upd = await s.aio.update_message(msgs[0], {"i": 1})
    assert upd.metadata == {"i": 1}

    # (cut-off clones of multi-batch sessions are covered in test_sessions.py)
    src = await honcho.aio.session(uid("as-src"))
    one = await src.aio.add_messages([alice.message("x"), bob.message("y"), alice.message("z")])
    clone = await src.aio.clone(message_id=one[1].id)
    assert [m.content async for m in await clone.aio.messages()] == ["x", "y"]

    ctx = await s.aio.context(tokens=more[-1].token_count + more[-2].token_count)
    assert [m.content for m in ctx.messages] == ["m58", "m59"]

    await s.aio.remove_peers("bob")
    assert [p.id for p in await s.aio.peers()] == ["alice"]
    await s.aio.set_peers(["bob"])
    assert [p.id for p in await s.aio.peers()] == ["bob"]

    sessions = await honcho.aio.sessions(filters={"metadata": {"k": "w"}})
    assert [x.id async for x in sessions] == ["as1"]
    mine = await alice.aio.sessions()
    assert "as1" in [x.id async for x in mine]


async def test_async_concurrent_writers_keep_batches_intact(honcho: Honcho) -> None:
    s = await honcho.aio.session("conc")
    peers = [await honcho.aio.peer(f"w{i}") for i in range(4)]

    async def writer(i: int) -> list[str]:
        out = []
        for b in range(5):
            res = await s.aio.add_messages([peers[i].message(f"w{i}-b{b}-{j}") for j in range(5)])
            out.extend(m.id for m in res)
        return out

    per_writer = await asyncio.gather(*(writer(i) for i in range(4)))
    listed = [m async for m in await s.aio.messages(size=100)]
    assert len(listed) == 100
    pos = {m.id: k for k, m in enumerate(listed)}
    for i, mids in enumerate(per_writer):
        # each writer's messages appear in the order it was acknowledged
        assert [pos[x] for x in mids] == sorted(pos[x] for x in mids)
        # and each 5-message batch is contiguous
        for b in range(5):
            chunk = [pos[x] for x in mids[b * 5 : b * 5 + 5]]
            assert chunk == list(range(chunk[0], chunk[0] + 5))


async def test_async_session_delete(honcho: Honcho) -> None:
    alice = await honcho.aio.peer("alice")
    s = await honcho.aio.session("adel")
    await s.aio.add_messages([alice.message("bye")])
    await s.aio.delete()
    assert "adel" not in [x.id for x in await honcho.aio.sessions()]
    fresh = await honcho.aio.session("adel")
    assert [m.content async for m in await fresh.aio.messages()] == []
