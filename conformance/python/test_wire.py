"""Raw HTTP details the SDKs depend on but do not surface (status codes, envelopes, shapes)."""

from __future__ import annotations

import httpx

from conftest import uid


def test_get_or_create_status_codes(http: httpx.Client) -> None:
    ws = uid("ws")
    assert http.post("/v3/workspaces", json={"id": ws}).status_code == 201
    r = http.post("/v3/workspaces", json={"id": ws})
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == ws and body["metadata"] == {} and isinstance(body["configuration"], dict)
    assert body["created_at"].endswith("Z") or "+" in body["created_at"]

    assert http.post(f"/v3/workspaces/{ws}/peers", json={"id": "p"}).status_code == 201
    peer = http.post(f"/v3/workspaces/{ws}/peers", json={"id": "p"})
    assert peer.status_code == 200
    assert {"id", "workspace_id", "created_at", "metadata", "configuration"} <= peer.json().keys()

    assert http.post(f"/v3/workspaces/{ws}/sessions", json={"id": "s"}).status_code == 201
    sess = http.post(f"/v3/workspaces/{ws}/sessions", json={"id": "s"})
    assert sess.status_code == 200
    assert sess.json()["is_active"] is True
    assert {"id", "is_active", "workspace_id", "metadata", "configuration", "created_at"} <= sess.json().keys()


def test_message_routes_status_and_shapes(http: httpx.Client) -> None:
    ws = uid("ws")
    base = f"/v3/workspaces/{ws}/sessions/s"
    r = http.post(f"{base}/messages", json={"messages": [{"peer_id": "p", "content": "hi", "created_at": "2023-01-01T12:00:00Z"}]})
    assert r.status_code == 201
    (m,) = r.json()
    assert m["created_at"] == "2023-01-01T12:00:00Z"
    assert set(m) >= {"id", "content", "peer_id", "session_id", "metadata", "created_at", "workspace_id", "token_count"}

    page = http.post(f"{base}/messages/list", params={"page": 1, "size": 10})
    assert page.status_code == 200
    assert {k: page.json()[k] for k in ("total", "page", "size", "pages")} == {"total": 1, "page": 1, "size": 10, "pages": 1}
    for body in ({}, {"filters": None}, {"filters": {}}):
        assert http.post(f"{base}/messages/list", json=body).json()["total"] == 1

    assert http.get(f"{base}/messages/{'x' * 21}").status_code == 404
    assert http.post(f"{base}/messages", json={"messages": []}).status_code == 422
    assert http.post(f"{base}/messages/list", params={"size": 0}).status_code == 422
    assert http.post(f"{base}/messages/list", params={"size": 101}).status_code == 422
    unknown = http.post(f"/v3/workspaces/{ws}/sessions/nope/messages/list", json={})
    assert unknown.status_code == 200 and unknown.json()["items"] == []


def test_session_subroutes_status(http: httpx.Client) -> None:
    ws = uid("ws")
    sid = uid("s")  # unique: the reference's clone leaks across same-named sessions
    base = f"/v3/workspaces/{ws}/sessions/{sid}"
    assert http.post(f"/v3/workspaces/{ws}/sessions", json={"id": sid, "peers": {"a": {}}}).status_code == 201
    assert http.put(f"{base}/peers/a/config", json={"observe_me": False}).status_code == 204
    assert http.get(f"{base}/peers/a/config").json().get("observe_me") is False
    r = http.post(f"{base}/peers", json={"b": {}})
    assert r.status_code == 200 and r.json()["id"] == sid
    assert http.post(f"{base}/clone").status_code == 201
    ctx = http.get(f"{base}/context", params={"tokens": 100})
    assert ctx.status_code == 200
    assert ctx.json()["id"] == sid and ctx.json()["messages"] == []
    assert ctx.json()["peer_representation"] is None and ctx.json()["peer_card"] is None
    assert http.get(f"/v3/workspaces/{ws}/peers/ghost/card").status_code == 404
    card = http.put(f"/v3/workspaces/{ws}/peers/a/card", json={"peer_card": ["x"]})
    assert card.status_code == 200 and card.json() == {"peer_card": ["x"]}
    assert http.get("/health").json() == {"status": "ok"}
