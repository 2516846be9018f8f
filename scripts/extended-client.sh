#!/usr/bin/env bash
# Runs Python with AWS's SQS Extended Client (amazon-sqs-extended-client, boto3) from
# .venv/extended, installing pinned versions there first if needed: the real producer of the
# large-payload tests (tests/extended-client/send.py).
#   scripts/extended-client.sh tests/extended-client/send.py QUEUE_URL BUCKET [--legacy] < BODY
#   scripts/extended-client.sh --install    (install only; prints the interpreter's path)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/extended"
version=1.0.1
if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/pip" show amazon-sqs-extended-client 2>/dev/null | grep -x "Version: $version" >/dev/null; then
  echo "extended-client: installing amazon-sqs-extended-client==$version into $venv (about 15 s)" >&2
  rm -rf "$venv"
  "$(command -v python3.11 || command -v python3)" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "amazon-sqs-extended-client==$version"
fi
if [ "${1:-}" = --install ]; then
  echo "$venv/bin/python"
  exit 0
fi
exec "$venv/bin/python" "$@"
