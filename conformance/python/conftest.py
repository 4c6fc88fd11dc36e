"""Fixtures: one engram server per pytest session (or ENGRAM_URL), unique workspace per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from honcho import Honcho

from engram_harness import EngramServer, engine_name


def pytest_report_header(config: pytest.Config) -> list[str]:
    if os.environ.get("ENGRAM_URL"):
        return [f"engram: external server {os.environ['ENGRAM_URL']}"]
    return [f"engram: spawned binary, engine={engine_name()}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("HONCHO_REFERENCE"):
        skip = pytest.mark.skip(reason="known reference-server bug (HONCHO_REFERENCE=1)")
        for item in items:
            if "refbug" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def base_url() -> Iterator[str]:
    external = os.environ.get("ENGRAM_URL")
    if external:
        yield external.rstrip("/")
        return
    srv = EngramServer("engram-conformance")
    # Keyword search answers exactly only without semantic neighbours (every stored
    # message is somebody's nearest neighbour); test_search.py starts its own server
    # with the model for the semantic case.
    srv.env["ENGRAM_EMBEDDINGS"] = "off"
    try:
        srv.start()
        yield srv.url
        rc = srv.stop()
        if rc != 0:
            print(f"\nengram exited with {rc} after SIGTERM\n{srv.log_tail()}")
    finally:
        srv.cleanup()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def ws_id() -> str:
    return uid("ws")


@pytest.fixture
def honcho(base_url: str, ws_id: str) -> Honcho:
    # max_retries=0: a 5xx must fail the test, not be hidden by the SDK's retries.
    return Honcho(base_url=base_url, workspace_id=ws_id, api_key="unused", max_retries=0, timeout=30)


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c
