#!/usr/bin/env bash
# Installs what the test command runs, side by side (they mostly download): the SAM CLI,
# cargo-lambda, AWS's SQS Extended Client for Python, LocalStack (and the full LocalStack the
# deployed path runs), moto, and podman. Each script also installs its own tool on first use;
# installing them all here first means that the parts of the test command that run at the same
# time never install one thing twice at once. Honours SKIP_SAM_LOCAL=1 and SKIP_DEPLOY=1.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d "${TMPDIR:-/tmp}/install.XXXXXX")
trap 'rm -rf "$logs"' EXIT

names=()
pids=()
install() { # install NAME COMMAND...
  local name=$1
  shift
  "$@" >"$logs/$name" 2>&1 &
  names+=("$name")
  pids+=($!)
}
install sam scripts/sam.sh --version
install cargo-lambda scripts/cargo-lambda.sh
install extended-client scripts/extended-client.sh --install
install localstack scripts/localstack.sh install
install dynamodb scripts/dynamodb.sh install
if [ "${SKIP_SAM_LOCAL:-}" != 1 ]; then
  install podman scripts/podman.sh install
  [ "${SKIP_DEPLOY:-}" = 1 ] || install localstack-full env LOCALSTACK_FULL=1 scripts/localstack.sh install
fi

failed=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    sed "s/^/install: ${names[$i]}: /" "$logs/${names[$i]}" | grep -v ': /' >&2 || true
  else
    echo "install: ${names[$i]} failed; its last lines:" >&2
    tail -n 20 "$logs/${names[$i]}" >&2
    failed=1
  fi
done
exit "$failed"
