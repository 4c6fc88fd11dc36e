#!/usr/bin/env bash
# schemathesis against the engram at $ENGRAM_URL (conformance/run_with_server.py starts one),
# with the settings of schemathesis.toml beside this file, then check_chain.py on what the
# stateful phase did. Uses the project's venv (scripts/test.sh installs requirements.txt).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$HERE/../../.venv}"
: "${ENGRAM_URL:?run this through conformance/run_with_server.py}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
"$VENV/bin/schemathesis" --config-file "$HERE/schemathesis.toml" run "$ENGRAM_URL/openapi.json" \
  --no-color --seed 14 --workers 1 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --report vcr --report-vcr-path "$OUT/cassette.yaml"
"$VENV/bin/python" "$HERE/check_chain.py" "$OUT/cassette.yaml"
