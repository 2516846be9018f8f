#!/usr/bin/env bash
# The benchmarks' Python (aiobotocore, matplotlib) in .venv/bench, installed on first use; prints
# its python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv/bench
if ! "$venv/bin/python" -c 'import aiobotocore, matplotlib' 2>/dev/null; then
  echo "bench: installing aiobotocore and matplotlib into $venv" >&2
  rm -rf "$venv"
  "$(command -v python3.11 || command -v python3)" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiobotocore==3.10.0' 'matplotlib==3.11.2'
fi
echo "$PWD/$venv/bin/python"
