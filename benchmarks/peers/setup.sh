#!/usr/bin/env bash
# Create the isolated virtualenv used by the peer benchmarks.
#
# The peers live in their own venv so that their dependencies (psycopg 3,
# asyncpg, uvloop, ...) never leak into the project's environment or its CI.
# Idempotent: when both libraries already import from the venv, nothing is
# installed again.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PEERS_VENV:-$(cd "$HERE/.." && pwd)/.venv-peers}"
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
fi

if "$PY" -c 'import procrastinate, pgqueuer' >/dev/null 2>&1; then
    echo "peers venv ready: $VENV"
else
    "$PY" -m pip install --quiet --upgrade pip
    # procrastinate 3.x talks to Postgres through psycopg 3 (binary wheel so no
    # libpq headers are needed); pgqueuer's default driver is asyncpg and it
    # runs faster under uvloop when available.
    "$PY" -m pip install --quiet \
        'procrastinate>=3,<4' \
        'pgqueuer>=0.20' \
        'psycopg[binary,pool]>=3.1' \
        asyncpg \
        uvloop
fi

"$PY" - <<'PY'
from importlib.metadata import version
for name in ("procrastinate", "pgqueuer", "psycopg", "asyncpg", "uvloop"):
    print(f"{name}=={version(name)}")
PY
