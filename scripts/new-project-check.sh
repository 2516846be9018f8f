#!/usr/bin/env bash
# A new project made with the one command (`sam init --location templates/sqs-function`) in a
# temporary directory, taking the framework from this checkout: `cargo test` passes offline, its
# minimal `bootstrap` links no DynamoDB or S3 client and one TLS stack (rustls with ring, not
# aws-lc-rs beside it), each feature's line builds, and its own test
# command (tests/test.sh: the kit's tests, sam validate, check, a drain on LocalStack in process
# and through the bootstrap) passes. So the template cannot rot.
#
# It builds into this workspace's target directory with this workspace's lock file (the same
# versions, so the build is shared). Its binaries `bootstrap` and `local` take the names of
# handler/'s in target/debug until the next build of handler/ puts those back: run it last.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
# The new project's demo starts a LocalStack in a session of its own (it outlives a stopped process
# group by design) and stops it from its own exit trap. Stopped from outside (the test command's
# other lane failed), that trap races this one, which removes the directory holding the pid: stop
# it here first, by that pid, then remove. TERM exits through this trap too.
cleanup() {
  if [ -d "$dir/orders/.localstack/demo" ]; then
    LOCALSTACK_STATE="$dir/orders/.localstack/demo" "$dir/orders/tests/localstack.sh" stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

(cd "$dir" && "$root/scripts/sam.sh" init --location "$root/templates/sqs-function" --no-input --name orders) >/dev/null
cd "$dir/orders"
# The tools its scripts install (the same scripts, the same pins) are this checkout's: they are
# installed once per checkout, not once per new project. `scripts/fresh-check.sh` covers their
# install on an empty machine.
[ -d "$root/.venv" ] && ln -s "$root/.venv" .venv
cp "$root/Cargo.lock" .
# The caller's build directory (the dependencies the two share are built once), and a target
# directory of its own for the binaries: the new project's `handler` package makes a `bootstrap`
# and a `local`, which must not replace the workspace's.
export CARGO_BUILD_BUILD_DIR="${CARGO_BUILD_BUILD_DIR:-${CARGO_TARGET_DIR:-$root/target}}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/new-project"

echo "new project: cargo test, offline" >&2
cargo test --quiet --offline
echo "new project: its bootstrap links no DynamoDB or S3 client, and no aws-lc-rs; the features that do build" >&2
linked=$(cargo tree --offline -p handler -e normal --prefix none | grep -E '^(aws-sdk-(dynamodb|s3)|aws-lc-rs) ' || true)
if [ -n "$linked" ]; then
  echo "new project: the minimal function links $linked" >&2
  exit 1
fi
cargo check --quiet --offline -p handler --features idempotency,large-payloads --bins
echo "new project: its test command" >&2
tests/test.sh
