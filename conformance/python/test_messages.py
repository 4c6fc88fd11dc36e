"""Messages: create (single/batch, metadata, created_at), list with filters, get, update,
reverse order, pagination, and session context with a token limit."""

from __future__ import annotations

import datetime as dt

import pytest
from honcho import Honcho, NotFoundError

UTC = dt.timezone.utc


def contents(xs) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.content for m in xs]


def test_add_single_and_batch(honcho: Honcho) -> None:
    alice, bob = honcho.peer("alice"), honcho.peer("bob")
    s = honcho.session("chat")
    one = s.add_messages(alice.message("hello"))
    assert len(one) == 1
    m = one[0]
    assert m.content == "hello" and m.peer_id == "alice"
    assert m.session_id == "chat" and m.workspace_id == honcho.workspace_id
    assert m.metadata == {} and isinstance(m.token_count, int) and m.token_count > 0
    assert len(m.id) == 21
    assert m.created_at.tzinfo is not None

    batch = s.add_messages(
        [
            bob.message("hi alice", metadata={"mood": "happy", "n": 1}),
            alice.message("how are you?", created_at=dt.datetime(2023, 1, 1, 12, 0, tzinfo=UTC)),
            bob.message("fine", metadata={"mood": "ok"}, created_at="2023-06-15T08:30:00Z"),
        ]
    )
    # returned in input order with what was sent
    assert contents(batch) == ["hi alice", "how are you?", "fine"]
    assert [x.peer_id for x in batch] == ["bob", "alice", "bob"]
    assert [x.metadata for x in batch] == [{"mood": "happy", "n": 1}, {}, {"mood": "ok"}]
    assert batch[1].created_at == dt.datetime(2023, 1, 1, 12, 0, tzinfo=UTC)
    assert batch[2].created_at == dt.datetime(2023, 6, 15, 8, 30, tzinfo=UTC)
    assert len({x.id for x in [m, *batch]}) == 4

    # listing is in insertion order (not created_at order)
    listed = list(s.messages())
    assert contents(listed) == ["hello", "hi alice", "how are you?", "fine"]
    assert [x.id for x in listed] == [m.id] + [x.id for x in batch]
    # message authors joined the session
    assert sorted(p.id for p in s.peers()) == ["alice", "bob"]


def test_messages_create_session_and_peers_implicitly(honcho: Honcho) -> None:
    from honcho import Peer, Session

    honcho.peer("anchor")
    s = Session("implicit", honcho)  # handle only: no request yet
    ghost = Peer("ghost", honcho)
    s.add_messages(ghost.message("boo"))
    assert "implicit" in [x.id for x in honcho.sessions()]
    assert "ghost" in [p.id for p in honcho.peers()]
    assert [p.id for p in s.peers()] == ["ghost"]


def test_get_and_update_message(honcho: Honcho) -> None:
    alice = honcho.peer("alice")
    s = honcho.session("upd")
    (m,) = s.add_messages(alice.message("remember me", metadata={"v": 1, "keep": True}))
    got = s.get_message(m.id)
    assert (got.id, got.content, got.peer_id, got.metadata) == (m.id, "remember me", "alice", {"v": 1, "keep": True})
    assert got.created_at == m.created_at and got.token_count == m.token_count

    updated = s.update_message(m, {"v": 2})
    assert updated.id == m.id and updated.content == "remember me"
    assert updated.metadata == {"v": 2}  # replaced, not merged
    assert s.get_message(m.id).metadata == {"v": 2}
    cleared = s.update_message(m.id, {})
    assert cleared.metadata == {}

    with pytest.raises(NotFoundError):
        s.get_message("A" * 21)
    with pytest.raises(NotFoundError):
        s.update_message("B" * 21, {"x": 1})


def test_list_filters(honcho: Honcho) -> None:
    alice, bob = honcho.peer("alice"), honcho.peer("bob")
    s = honcho.session("flt")
    s.add_messages(
        [
            alice.message("a1", metadata={"topic": "food", "score": 5}, created_at="2023-01-01T00:00:00Z"),
            bob.message("b1", metadata={"topic": "travel", "score": 7}, created_at="2023-02-01T00:00:00Z"),
            alice.message("a2", metadata={"topic": "travel", "score": 9}, created_at="2023-03-01T00:00:00Z"),
            bob.message("b2", metadata={"topic": "food", "tags": {"x": 1}}, created_at="2023-04-01T00:00:00Z"),
        ]
    )
    other = honcho.session("other")
    other.add_messages(alice.message("elsewhere", metadata={"topic": "food"}))

    assert contents(s.messages(filters={"peer_id": "alice"})) == ["a1", "a2"]
    assert contents(s.messages(filters={"peer_id": "bob"})) == ["b1", "b2"]
    assert contents(s.messages(filters={"metadata": {"topic": "food"}})) == ["a1", "b2"]
    assert contents(s.messages(filters={"metadata": {"topic": "travel"}, "peer_id": "alice"})) == ["a2"]
    assert contents(s.messages(filters={"metadata": {"score": {"gte": 7}}})) == ["b1", "a2"]
    assert contents(s.messages(filters={"metadata": {"tags": {"x": 1}}})) == ["b2"]
    assert contents(s.messages(filters={"peer_id": {"in": ["bob"]}})) == ["b1", "b2"]
    assert contents(s.messages(filters={"created_at": {"gte": "2023-02-01", "lt": "2023-04-01"}})) == ["b1", "a2"]
    assert contents(s.messages(filters={"OR": [{"peer_id": "bob"}, {"metadata": {"score": 5}}]})) == ["a1", "b1", "b2"]
    assert contents(s.messages(filters={"NOT": [{"peer_id": "alice"}]})) == ["b1", "b2"]
    assert contents(s.messages(filters={"metadata": {"topic": "none"}})) == []
    # filters never widen past the session
    assert contents(s.messages(filters={"session_id": "other"})) == []
    assert contents(other.messages()) == ["elsewhere"]
    # filtered reverse
    assert contents(s.messages(filters={"peer_id": "alice"}, reverse=True)) == ["a2", "a1"]


def test_reverse_and_pagination(honcho: Honcho) -> None:
    alice, bob = honcho.peer("alice"), honcho.peer("bob")
    s = honcho.session("long")
    expected = [f"msg {i:03d}" for i in range(130)]
    # two batches (batch limit is 100)
    s.add_messages([(alice if i % 2 == 0 else bob).message(expected[i]) for i in range(0, 70)])
    s.add_messages([(alice if i % 2 == 0 else bob).message(expected[i]) for i in range(70, 130)])

    first = s.messages()
    assert len(first) == 50 and first.total == 130 and first.pages == 3 and first.page == 1 and first.size == 50
    assert contents(first.items) == expected[:50]
    assert first.has_next_page()
    assert contents(first) == expected  # iterates all three pages

    third = s.messages(page=3)
    assert contents(third.items) == expected[100:] and not third.has_next_page()
    assert s.messages(page=4).items == []

    small = s.messages(size=7, page=2)
    assert contents(small.items) == expected[7:14] and small.pages == 19

    rev = s.messages(reverse=True)
    assert contents(rev.items) == list(reversed(expected))[:50]
    assert contents(rev) == list(reversed(expected))

    assert contents(s.messages(filters={"peer_id": "bob"})) == expected[1::2]


def test_context_token_limit(honcho: Honcho) -> None:
    alice, bob = honcho.peer("alice"), honcho.peer("bob")
    s = honcho.session("ctx")
    texts = [f"message number {i} says something about topic {i * 7}" for i in range(12)]
    created = s.add_messages([(alice if i % 2 == 0 else bob).message(t) for i, t in enumerate(texts)])
    counts = [m.token_count for m in created]
    assert all(c > 0 for c in counts)

    full = s.context()
    assert full.session_id == "ctx"
    assert contents(full.messages) == texts
    assert full.summary is None and full.peer_representation is None and full.peer_card is None

    no_summary = s.context(summary=False)
    assert contents(no_summary.messages) == texts

    for budget in (counts[-1], counts[-1] + counts[-2], sum(counts[-5:]) + 1, sum(counts) + 100):
        ctx = s.context(tokens=budget, summary=False)
        got = contents(ctx.messages)
        k = len(got)
        # the newest messages whose running total fits, oldest first
        assert got == texts[len(texts) - k :], budget
        assert sum(counts[len(texts) - k :]) <= budget
        if k < len(texts):
            assert sum(counts[len(texts) - k - 1 :]) > budget

    # newest message alone over budget -> nothing
    if counts[-1] > 1:
        assert s.context(tokens=counts[-1] - 1, summary=False).messages == []

    openai = s.context(tokens=counts[-1] + counts[-2]).to_openai(assistant=bob)
    assert openai == [
        {"role": "user", "content": texts[-2], "name": "alice"},
        {"role": "assistant", "content": texts[-1], "name": "bob"},
    ]


def test_context_of_empty_session(honcho: Honcho) -> None:
    s = honcho.session("nothing")
    ctx = s.context(tokens=100)
    assert ctx.messages == [] and ctx.summary is None
