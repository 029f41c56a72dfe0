#!/usr/bin/env bash
# Set up or refresh this checkout on Debian/Ubuntu: system ffmpeg, a .venv with Python 3.11, and the
# pinned packages of constraints.txt. Safe to run again: it does only what is missing or changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup: need root (or sudo) to run: $*" >&2; exit 1
  fi
}

apt_install() {
  echo "setup: installing $* with apt" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  apt_install ffmpeg
fi

# The test suite drives the Prefect UI in a headless browser: Debian's Chromium and its driver.
if [ "${1:-}" = "--with-browser" ] && { ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; }; then
  apt_install chromium chromium-driver
fi

python_311() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "setup: Python 3.11 not found (set PYTHON=/path/to/python3.11)" >&2; exit 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(python_311)
  if ! "$py" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    apt_install python3.11-venv
    "$py" -m venv .venv
  fi
fi

stamp=.venv/.setup-stamp
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (torch and Prefect: a few minutes the first time)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
  # k-diffusion, the samplers' reference in tests/test_sampling.py: its declared requirements serve its
  # training code (torchvision, kornia, clean-fid, wandb, …), which the tests never import, so it comes
  # without them; what its sampling module imports is in the test extra.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt --no-deps k-diffusion
  echo "$want" > "$stamp"
fi
