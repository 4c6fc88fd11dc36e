"""Sessions: get-or-create, list with filters, metadata/configuration, peers, peer config, clone."""

from __future__ import annotations

import pytest
from honcho import Honcho
from conftest import uid
from honcho.api_types import (
    ReasoningConfiguration,
    SessionConfiguration,
    SessionPeerConfig,
    SummaryConfiguration,
)


def ids(xs) -> list[str]:  # type: ignore[no-untyped-def]
    return [x.id for x in xs]


def test_create_with_metadata_config_peers(honcho: Honcho) -> None:
    s = honcho.session(
        "s1",
        metadata={"topic": "travel"},
        configuration=SessionConfiguration(summary=SummaryConfiguration(enabled=False)),
        peers=[("alice", SessionPeerConfig(observe_others=True)), "bob"],
    )
    assert s.id == "s1" and s.workspace_id == honcho.workspace_id
    assert s.metadata == {"topic": "travel"}
    assert s.configuration is not None and s.configuration.summary is not None
    assert s.configuration.summary.enabled is False
    assert s.is_active is True and s.created_at is not None
    assert sorted(ids(s.peers())) == ["alice", "bob"]
    assert s.get_peer_configuration("alice").observe_others is True
    # peers were created in the workspace too
    assert sorted(ids(honcho.peers())) == ["alice", "bob"]  # same created_at: order not fixed

    again = honcho.session("s1")
    assert again.metadata == {"topic": "travel"} and again.created_at == s.created_at
    replaced = honcho.session("s1", metadata={"topic": "food"})
    assert replaced.metadata == {"topic": "food"}


def test_metadata_and_configuration_merge(honcho: Honcho) -> None:
    s = honcho.session("s-meta")
    assert s.get_metadata() == {}
    s.set_metadata({"a": 1, "b": {"c": "d"}})
    assert s.get_metadata() == {"a": 1, "b": {"c": "d"}}
    s.set_metadata({"z": 0})
    assert s.get_metadata() == {"z": 0}

    s.set_configuration(SessionConfiguration(reasoning=ReasoningConfiguration(enabled=False)))
    s.set_configuration(SessionConfiguration(summary=SummaryConfiguration(enabled=True)))
    cfg = s.get_configuration()
    # top-level keys are merged across updates
    assert cfg.reasoning is not None and cfg.reasoning.enabled is False
    assert cfg.summary is not None and cfg.summary.enabled is True
    s.refresh()
    assert s.metadata == {"z": 0}


def test_list_sessions_filters_order_pagination(honcho: Honcho) -> None:
    names = [f"s{i:02d}" for i in range(6)]
    for i, n in enumerate(names):
        honcho.session(n, metadata={"parity": i % 2, "i": i})
    assert ids(honcho.sessions()) == names
    assert ids(honcho.sessions(filters={"metadata": {"parity": 1}})) == ["s01", "s03", "s05"]
    assert ids(honcho.sessions(filters={"id": "s04"})) == ["s04"]
    assert ids(honcho.sessions(filters={"is_active": True})) == names
    assert ids(honcho.sessions(filters={"metadata": {"i": {"lt": 2}}})) == ["s00", "s01"]
    assert ids(honcho.sessions(filters={"OR": [{"id": "s05"}, {"id": "s00"}]})) == ["s00", "s05"]
    page = honcho.sessions(size=4)
    assert page.total == 6 and page.pages == 2 and ids(page.items) == names[:4]
    assert ids(page) == names
    assert ids(honcho.sessions(reverse=True)) == list(reversed(names))
    rev_p2 = honcho.sessions(reverse=True, size=4, page=2)
    assert ids(rev_p2.items) == ["s01", "s00"]


def test_add_set_remove_peers(honcho: Honcho) -> None:
    s = honcho.session("room")
    assert s.peers() == []
    s.add_peers(["alice", honcho.peer("bob")])
    assert sorted(ids(s.peers())) == ["alice", "bob"]
    s.add_peers(("carol", SessionPeerConfig(observe_me=False)))
    assert sorted(ids(s.peers())) == ["alice", "bob", "carol"]
    assert s.get_peer_configuration("carol").observe_me is False
    s.add_peers("alice")  # idempotent
    assert sorted(ids(s.peers())) == ["alice", "bob", "carol"]

    s.remove_peers("bob")
    assert sorted(ids(s.peers())) == ["alice", "carol"]
    s.remove_peers([honcho.peer("alice"), "carol"])
    assert s.peers() == []

    s.add_peers(["alice", "bob"])
    s.set_peers(["dave", ("erin", SessionPeerConfig(observe_others=True))])
    assert sorted(ids(s.peers())) == ["dave", "erin"]
    assert s.get_peer_configuration("erin").observe_others is True
    s.set_peers("alice")
    assert ids(s.peers()) == ["alice"]


def test_peer_configuration_get_set(honcho: Honcho) -> None:
    s = honcho.session("pc", peers=["alice"])
    c = s.get_peer_configuration("alice")
    assert c.observe_me is None and c.observe_others is None
    s.set_peer_configuration("alice", SessionPeerConfig(observe_others=True))
    c = s.get_peer_configuration("alice")
    assert c.observe_others is True and c.observe_me is None
    # fields not sent are kept (merge)
    s.set_peer_configuration(honcho.peer("alice"), SessionPeerConfig(observe_me=False))
    c = s.get_peer_configuration("alice")
    assert c.observe_others is True and c.observe_me is False
    # setting config for a peer that is not yet a member makes it one
    honcho.peer("bob")
    s.set_peer_configuration("bob", SessionPeerConfig(observe_me=True))
    assert s.get_peer_configuration("bob").observe_me is True
    assert sorted(ids(s.peers())) == ["alice", "bob"]


def test_clone_whole_and_with_cutoff(honcho: Honcho) -> None:
    alice, bob = honcho.peer("alice"), honcho.peer("bob")
    sid = uid("orig")  # unique name: see test_clone_is_scoped_to_workspace
    s = honcho.session(sid, metadata={"m": "x"}, peers=[alice, bob])
    msgs = s.add_messages(
        [
            alice.message("one", metadata={"k": 1}),
            bob.message("two"),
            alice.message("three", metadata={"k": 3}),
            bob.message("four"),
        ]
    )

    full = s.clone()
    assert full.id != s.id and full.is_active is True
    assert full.metadata == {"m": "x"}
    cm = list(full.messages())
    assert [m.content for m in cm] == ["one", "two", "three", "four"]
    assert [m.peer_id for m in cm] == ["alice", "bob", "alice", "bob"]
    assert [m.metadata for m in cm] == [{"k": 1}, {}, {"k": 3}, {}]
    assert all(m.session_id == full.id for m in cm)
    assert {m.id for m in cm}.isdisjoint({m.id for m in msgs})  # new message ids
    assert sorted(ids(full.peers())) == ["alice", "bob"]

    cut = s.clone(message_id=msgs[1].id)
    assert [m.content for m in cut.messages()] == ["one", "two"]  # cut-off inclusive
    assert cut.id not in (s.id, full.id)

    # the source is untouched, and clones are listed as sessions
    assert [m.content for m in s.messages()] == ["one", "two", "three", "four"]
    assert set(ids(honcho.sessions())) == {sid, full.id, cut.id}


def test_clone_empty_session(honcho: Honcho) -> None:
    s = honcho.session(uid("empty"), peers=["alice"])
    c = s.clone()
    assert list(c.messages()) == []


def test_clone_cutoff_across_batches(honcho: Honcho) -> None:
    alice = honcho.peer("alice")
    s = honcho.session(uid("batches"))
    first = s.add_messages([alice.message("b1-0"), alice.message("b1-1")])
    s.add_messages([alice.message("b2-0"), alice.message("b2-1")])
    s.add_messages(alice.message("b3-0"))
    assert [m.content for m in s.clone(message_id=first[1].id).messages()] == ["b1-0", "b1-1"]
    third = list(s.messages())[3]
    assert [m.content for m in s.clone(message_id=third.id).messages()] == ["b1-0", "b1-1", "b2-0", "b2-1"]
    assert [m.content for m in s.clone().messages()] == ["b1-0", "b1-1", "b2-0", "b2-1", "b3-0"]


@pytest.mark.refbug
def test_clone_is_scoped_to_workspace(base_url: str, honcho: Honcho) -> None:
    # Session names are unique per workspace only. The reference server (v3.0.12) selects
    # the messages to clone by session name alone, so it copies (or 500s on) same-named
    # sessions of other workspaces. Engram must scope the clone to the workspace.
    other = Honcho(base_url=base_url, workspace_id=uid("ws-other"), max_retries=0)
    other.session("twin").add_messages(other.peer("zed").message("not yours"))
    mine = honcho.session("twin")
    mine.add_messages(honcho.peer("alice").message("mine"))
    assert [m.content for m in mine.clone().messages()] == ["mine"]
    assert [m.content for m in other.session("twin").messages()] == ["not yours"]


def test_session_delete(honcho: Honcho) -> None:
    doomed = honcho.session("doomed", peers=["alice"])
    doomed.add_messages([doomed_peer.message(f"m{i}") for i, doomed_peer in enumerate([honcho.peer("alice")] * 3)])
    keep = honcho.session("keep")
    keep.add_messages([honcho.peer("alice").message("stays")])
    doomed.delete()
    assert "doomed" not in ids(honcho.sessions())
    assert "doomed" not in ids(honcho.sessions(filters={"is_active": True}))
    assert "doomed" not in ids(honcho.peer("alice").sessions())
    assert list(doomed.messages()) == []
    with pytest.raises(Exception):
        doomed.delete()  # already deleted: 404
    reborn = honcho.session("doomed")
    assert list(reborn.messages()) == [] and reborn.is_active is True
    assert [m.content for m in keep.messages()] == ["stays"]


def test_queue_status_after_delete(honcho: Honcho) -> None:
    s = honcho.session("qs")
    s.add_messages([honcho.peer("alice").message("hi")])
    s.delete()
    status = honcho.queue_status()
    assert status.pending_work_units == 0 and status.in_progress_work_units == 0
    scoped = honcho.queue_status(observer="alice", sender="alice", session="qs")
    assert scoped.total_work_units == 0 and scoped.sessions is None
