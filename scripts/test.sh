#!/usr/bin/env bash
# README line 2: set up, check formatting and lint (ruff), then run the test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --with-browser
.venv/bin/ruff format --check --quiet . || { echo "test: ruff format would change the files above (run .venv/bin/ruff format .)" >&2; exit 1; }
.venv/bin/ruff check --quiet .
export PREFECT_SERVER_ANALYTICS_ENABLED=false
exec .venv/bin/python -m pytest -m "integration or not integration" "$@"  # everything; bare pytest runs the quick subset
