"""Peers: get-or-create, list with filters, metadata, configuration, sessions, peer card."""

from __future__ import annotations

from honcho import Honcho, Peer
from honcho.api_types import PeerConfig, SessionPeerConfig


def test_create_with_metadata_and_configuration(honcho: Honcho) -> None:
    alice = honcho.peer("alice", metadata={"role": "user"}, configuration=PeerConfig(observe_me=False))
    assert alice.id == "alice" and alice.workspace_id == honcho.workspace_id
    assert alice.metadata == {"role": "user"}
    assert alice.configuration is not None and alice.configuration.observe_me is False
    assert alice.created_at is not None

    plain = honcho.peer("bob")
    assert plain.metadata == {}

    # get-or-create again without metadata: unchanged
    again = honcho.peer("alice")
    assert again.metadata == {"role": "user"}
    assert again.created_at == alice.created_at
    # get-or-create with metadata replaces it
    replaced = honcho.peer("alice", metadata={"role": "admin"})
    assert replaced.metadata == {"role": "admin"}
    assert honcho.peer("alice").get_metadata() == {"role": "admin"}


def test_metadata_and_configuration(honcho: Honcho) -> None:
    p = honcho.peer("carol")
    assert p.get_metadata() == {}
    p.set_metadata({"likes": ["tea", "chess"], "age": 30})
    assert p.get_metadata() == {"likes": ["tea", "chess"], "age": 30}
    assert honcho.peer("carol").metadata == {"likes": ["tea", "chess"], "age": 30}
    p.set_metadata({})
    assert p.get_metadata() == {}

    assert p.get_configuration().observe_me is None
    p.set_configuration(PeerConfig(observe_me=False))
    assert p.get_configuration().observe_me is False
    p.set_configuration(PeerConfig(observe_me=True))
    assert p.get_configuration().observe_me is True
    # configuration update leaves metadata alone
    p.set_metadata({"x": 1})
    p.set_configuration(PeerConfig(observe_me=False))
    p.refresh()
    assert p.metadata == {"x": 1}
    assert p.configuration is not None and p.configuration.observe_me is False


def test_list_peers_filters_order_pagination(honcho: Honcho) -> None:
    names = [f"p{i:02d}" for i in range(7)]
    for i, n in enumerate(names):
        honcho.peer(n, metadata={"group": "even" if i % 2 == 0 else "odd", "i": i})

    all_page = honcho.peers()
    assert [p.id for p in all_page] == names
    assert all_page.total == 7

    evens = honcho.peers(filters={"metadata": {"group": "even"}})
    assert [p.id for p in evens] == ["p00", "p02", "p04", "p06"]
    assert all(p.metadata is not None and p.metadata["group"] == "even" for p in evens)

    assert [p.id for p in honcho.peers(filters={"id": "p03"})] == ["p03"]
    assert [p.id for p in honcho.peers(filters={"id": {"in": ["p05", "p01"]}})] == ["p01", "p05"]
    assert [p.id for p in honcho.peers(filters={"metadata": {"i": {"gte": 5}}})] == ["p05", "p06"]

    paged = honcho.peers(size=3)
    assert paged.pages == 3 and len(paged) == 3 and paged.has_next_page()
    assert [p.id for p in paged.items] == names[:3]
    assert [p.id for p in paged] == names

    rev = honcho.peers(reverse=True, size=3)
    assert [p.id for p in rev] == list(reversed(names))


def test_peer_sessions(honcho: Honcho) -> None:
    alice = honcho.peer("alice")
    honcho.session("s-a", peers=[alice])
    honcho.session("s-b", peers=["alice", "bob"])
    honcho.session("s-c", peers=["bob"])
    s_d = honcho.session("s-d", metadata={"kind": "special"})
    s_d.add_peers(alice)

    assert [s.id for s in alice.sessions()] == ["s-a", "s-b", "s-d"]
    assert [s.id for s in honcho.peer("bob").sessions()] == ["s-b", "s-c"]
    assert [s.id for s in alice.sessions(reverse=True)] == ["s-d", "s-b", "s-a"]
    special = list(alice.sessions(filters={"metadata": {"kind": "special"}}))
    assert [s.id for s in special] == ["s-d"] and special[0].metadata == {"kind": "special"}
    first = alice.sessions(size=2)
    assert first.total == 3 and first.pages == 2 and [s.id for s in first.items] == ["s-a", "s-b"]
    assert all(s.is_active for s in alice.sessions())
    assert list(honcho.peer("nobody").sessions()) == []


def test_peer_sessions_includes_left_sessions(honcho: Honcho) -> None:
    # Reference quirk (honcho-v3 §3.2): a peer's session list keeps sessions it has left.
    s = honcho.session("left-one", peers=["alice", "bob"])
    s.remove_peers("bob")
    assert [p.id for p in s.peers()] == ["alice"]
    assert [x.id for x in honcho.peer("bob").sessions()] == ["left-one"]


def test_peer_card(honcho: Honcho) -> None:
    alice = honcho.peer("alice")
    assert alice.get_card() is None
    assert alice.set_card(["Likes tea", "Lives in Paris"]) == ["Likes tea", "Lives in Paris"]
    assert alice.get_card() == ["Likes tea", "Lives in Paris"]
    # replace, not append
    assert alice.set_card(["Moved to Lyon"]) == ["Moved to Lyon"]
    assert alice.get_card() == ["Moved to Lyon"]

    # local card: alice's card of bob, distinct from alice's own card
    bob = honcho.peer("bob")
    assert alice.get_card(target=bob) is None
    assert alice.set_card(["Bob is a chef"], target=bob) == ["Bob is a chef"]
    assert alice.get_card(target="bob") == ["Bob is a chef"]
    assert alice.get_card() == ["Moved to Lyon"]
    assert bob.get_card() is None


def test_set_card_creates_peer(honcho: Honcho) -> None:
    honcho.peer("anchor")  # workspace exists; "newbie" does not
    newbie = Peer("newbie", honcho)  # handle only, no request
    assert "newbie" not in [p.id for p in honcho.peers()]
    assert newbie.set_card(["fresh"]) == ["fresh"]
    assert "newbie" in [p.id for p in honcho.peers()]
    assert newbie.get_card() == ["fresh"]


def test_session_peer_config_via_peers(honcho: Honcho) -> None:
    s = honcho.session(
        "cfg", peers=[("alice", SessionPeerConfig(observe_others=True, observe_me=False)), "bob"]
    )
    a = s.get_peer_configuration("alice")
    assert a.observe_others is True and a.observe_me is False
    b = s.get_peer_configuration(honcho.peer("bob"))
    assert b.observe_others is None and b.observe_me is None
