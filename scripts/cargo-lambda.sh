#!/usr/bin/env bash
# cargo-lambda (which `sam build` runs for BuildMethod rust-cargolambda), pinned, from PyPI into
# .venv/cargo-lambda (about 15 s the first time; it brings zig). Prints the folder to put on the
# PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/cargo-lambda"
version=1.9.2
if ! "$venv/bin/pip" show cargo-lambda 2>/dev/null | grep -x "Version: $version" >/dev/null; then
  echo "cargo-lambda: installing cargo-lambda $version into $venv (about 15 s)" >&2
  rm -rf "$venv"
  "$(command -v python3.11 || command -v python3)" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$version"
fi
echo "$venv/bin"
