#!/usr/bin/env bash
# Runs the AWS SAM CLI from .venv/sam, installing a pinned version there first if needed.
#   scripts/sam.sh validate --lint
#   scripts/sam.sh local generate-event sqs receive-message
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/sam"
version=1.170.0
if ! [ -x "$venv/bin/sam" ] || ! "$venv/bin/pip" show aws-sam-cli 2>/dev/null | grep -x "Version: $version" >/dev/null; then
  echo "sam: installing aws-sam-cli==$version into $venv (about 40 s)" >&2
  rm -rf "$venv"
  "$(command -v python3.11 || command -v python3)" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$version"
fi
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
exec "$venv/bin/sam" "$@"
