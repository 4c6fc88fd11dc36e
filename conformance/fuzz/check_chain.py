#!/usr/bin/env python3
"""Fails unless the stateful phase recorded in a schemathesis VCR cassette deleted a session,
created the same id again and deleted it again (202 both times): the sequence the document's
links exist for, where a reused id must behave as never used. `check_chain.py CASSETTE`."""

import re
import sys
from urllib.parse import unquote, urlparse

import yaml

SESSION = re.compile(r"^/v3/workspaces/([^/]+)/sessions/([^/]+)$")


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        cassette = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    deletions: dict[tuple[str, str], int] = {}
    steps = 0
    for interaction in cassette.get("http_interactions") or []:
        if (interaction.get("phase") or {}).get("name") != "stateful":
            continue
        steps += 1
        request, response = interaction["request"], interaction.get("response")
        match = SESSION.match(unquote(urlparse(request["uri"]).path))
        if request["method"] == "DELETE" and match and response and int(response["status"]["code"]) == 202:
            deletions[match.groups()] = deletions.get(match.groups(), 0) + 1
    reused = sum(1 for n in deletions.values() if n >= 2)
    print(f"stateful phase: {steps} requests, {len(deletions)} sessions deleted, "
          f"{reused} of them created again and deleted again")
    if reused == 0:
        print("the stateful phase never deleted a reused session id", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
