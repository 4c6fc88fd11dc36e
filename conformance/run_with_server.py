#!/usr/bin/env python3
"""Run a command against a freshly spawned engram: `run_with_server.py -- CMD ARGS...`.

The server (ENGRAM_BIN; engine from ENGRAM_TEST_PG_URL, see python/engram_harness.py) is
started on a free 127.0.0.1 port, its base URL is exported as ENGRAM_URL, CMD runs, and the
server is stopped with SIGTERM. Exit status: CMD's, or 1 if the server failed to start or
did not exit 0 after SIGTERM.
"""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "python"))
from engram_harness import EngramServer, engine_name  # noqa: E402


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    srv = EngramServer("engram-run")
    try:
        url = srv.start()
        print(f"engram ({engine_name()}) at {url}", flush=True)
        rc = subprocess.call(argv, env={**os.environ, "ENGRAM_URL": url})
        stop_rc = srv.stop()
        if stop_rc != 0:
            print(f"engram exited with {stop_rc} after SIGTERM\n{srv.log_tail()}", file=sys.stderr)
            rc = rc or 1
        elif rc != 0:
            print(srv.log_tail(), file=sys.stderr)
        return rc
    except Exception as e:  # noqa: BLE001
        print(f"run_with_server: {e}", file=sys.stderr)
        return 1
    finally:
        srv.cleanup()


if __name__ == "__main__":
    sys.exit(main())
