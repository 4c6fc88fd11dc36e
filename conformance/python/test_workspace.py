"""Workspace: get-or-create, metadata, configuration, list (filters, pagination, reverse)."""

from __future__ import annotations

import uuid

import pytest

from honcho import Honcho
from honcho.api_types import (
    DreamConfiguration,
    PeerCardConfiguration,
    ReasoningConfiguration,
    SummaryConfiguration,
    WorkspaceConfiguration,
)

from conftest import uid


def test_metadata_roundtrip(honcho: Honcho) -> None:
    assert honcho.get_metadata() == {}
    assert honcho.uid is None or isinstance(honcho.uid, str)
    honcho.set_metadata({"team": "core", "n": 3, "nested": {"a": [1, 2, {"b": True}]}})
    assert honcho.get_metadata() == {"team": "core", "n": 3, "nested": {"a": [1, 2, {"b": True}]}}
    # metadata is replaced wholesale, not merged
    honcho.set_metadata({"only": "this"})
    assert honcho.get_metadata() == {"only": "this"}
    honcho.set_metadata({})
    assert honcho.get_metadata() == {}


def test_configuration_set_and_merge(honcho: Honcho) -> None:
    cfg = honcho.get_configuration()
    assert isinstance(cfg, WorkspaceConfiguration)
    honcho.set_configuration(
        WorkspaceConfiguration(
            reasoning=ReasoningConfiguration(enabled=False),
            peer_card=PeerCardConfiguration(use=True, create=False),
        )
    )
    got = honcho.get_configuration()
    assert got.reasoning is not None and got.reasoning.enabled is False
    assert got.peer_card is not None and got.peer_card.use is True and got.peer_card.create is False
    # workspace configuration update merges top-level keys
    honcho.set_configuration(
        WorkspaceConfiguration(summary=SummaryConfiguration(enabled=False, messages_per_short_summary=20))
    )
    got = honcho.get_configuration()
    assert got.reasoning is not None and got.reasoning.enabled is False
    assert got.summary is not None and got.summary.enabled is False
    assert got.summary.messages_per_short_summary == 20
    # metadata untouched by a configuration update
    honcho.set_metadata({"m": 1})
    honcho.set_configuration(WorkspaceConfiguration(dream=DreamConfiguration(enabled=False)))
    assert honcho.get_metadata() == {"m": 1}
    assert honcho.get_configuration().dream.enabled is False  # type: ignore[union-attr]


def test_refresh_updates_cache(base_url: str, honcho: Honcho) -> None:
    honcho.set_metadata({"v": 1})
    other = Honcho(base_url=base_url, workspace_id=honcho.workspace_id, max_retries=0)
    other.set_metadata({"v": 2})
    assert honcho.metadata == {"v": 1}
    honcho.refresh()
    assert honcho.metadata == {"v": 2}


def test_get_or_create_is_idempotent(base_url: str, honcho: Honcho) -> None:
    honcho.set_metadata({"keep": "me"})
    again = Honcho(base_url=base_url, workspace_id=honcho.workspace_id, max_retries=0)
    # get-or-create of an existing workspace returns it unchanged
    assert again.get_metadata() == {"keep": "me"}


def test_list_workspaces_filters_pagination_reverse(base_url: str) -> None:
    tag = uuid.uuid4().hex
    ids = [uid("wsl") for _ in range(5)]
    for i, w in enumerate(ids):
        Honcho(base_url=base_url, workspace_id=w, max_retries=0).set_metadata({"tag": tag, "i": i})
    h = Honcho(base_url=base_url, workspace_id=ids[0], max_retries=0)

    by_id = h.workspaces(filters={"id": ids[2]})
    assert list(by_id) == [ids[2]]

    page = h.workspaces(filters={"metadata": {"tag": tag}}, size=2)
    assert page.total == 5 and page.pages == 3 and page.page == 1 and page.size == 2
    assert page.items == ids[:2]
    assert list(page) == ids  # iteration walks every page, in creation order

    second = h.workspaces(filters={"metadata": {"tag": tag}}, page=2, size=2)
    assert second.items == ids[2:4]

    rev = h.workspaces(filters={"metadata": {"tag": tag}}, reverse=True, size=2)
    assert list(rev) == list(reversed(ids))

    past_end = h.workspaces(filters={"metadata": {"tag": tag}}, page=9, size=2)
    assert past_end.items == [] and past_end.total == 5

    none = h.workspaces(filters={"metadata": {"tag": "no-such-" + tag}})
    assert list(none) == [] and none.total == 0 and none.pages == 0


def test_delete_workspace(base_url: str) -> None:
    from conftest import uid

    ws = uid("del")
    h = Honcho(base_url=base_url, workspace_id=ws, api_key="unused", max_retries=0)
    s = h.session("only")
    s.add_messages([h.peer("alice").message("hello")])
    with pytest.raises(Exception):
        h.delete_workspace(ws)  # 409: a live session remains
    s.delete()
    h.delete_workspace(ws)
    assert ws not in [w for w in h.workspaces()]
    again = Honcho(base_url=base_url, workspace_id=ws, api_key="unused", max_retries=0)
    assert list(again.peers()) == [] and list(again.sessions()) == []
