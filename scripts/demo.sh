#!/usr/bin/env bash
# README line 1: set up, make a synthetic reel and run the whole soundtrack pipeline on it
# (local files, SQLite in ~/.audiox-studio, a temporary local Prefect API, the shipped demo model).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false
exec .venv/bin/audiox-studio demo "$@"
