#!/usr/bin/env bash
# Proves that the framework does not depend on the example handler: in a copy of the repository,
# handler/ is replaced by examples/orders (another message type, no `work_ms`, an SDK client built
# at start-up), and the whole test command runs there. A user's edit of handler/ can then only
# break the user's own tests.
#
#   scripts/swap-check.sh            # uses the installs (.venv) and the build cache (target/) of
#                                    # this checkout, so it costs a test run, not a fresh machine
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
copy=$(mktemp -d "${TMPDIR:-/tmp}/swap-check.XXXXXX")
trap 'rm -rf "$copy"' EXIT

# The files of the checkout (tracked, and new ones not ignored), without build output or installs.
git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C "$copy"
rm -rf "$copy/handler"
cp -r examples/orders "$copy/handler"
[ -d .venv ] && ln -s "$root/.venv" "$copy/.venv"
# The other handler has dependencies of its own: its entry in the copy's Cargo.lock follows them
# (the crates themselves are already locked for the workspace), so the test command's --locked holds.
(cd "$copy" && { cargo update --workspace --offline --quiet 2>/dev/null || cargo update --workspace --quiet; })
echo "swap-check: handler/ is now examples/orders in $copy" >&2

cd "$copy"
# The copy is not beside ../shared: name the advisory snapshot of this checkout.
if [ -z "${ADVISORY_DB:-}" ] && [ -d "$root/../shared/advisory-db" ]; then
  ADVISORY_DB=$(cd "$root/../shared/advisory-db" && pwd)
  export ADVISORY_DB
fi
# The deployed path deploys the framework's stacks, which the main test command has proven; what
# changes here is the handler, which every other step (sam build and sam local invoke included)
# runs with. SKIP_DEPLOY=0 runs it here too.
# The nextest profile `swap` runs the tests of the `handler` package, the only ones that can see
# handler/ (.config/nextest.toml says why); every test binary is still built. SKIP_FRAMEWORK_ONLY
# leaves out the steps that never run handler/: the framework's `opentelemetry` feature (sqs-batch
# alone) and its test function under `sam local invoke`. The main test command runs all of them.
NEXTEST_PROFILE="${NEXTEST_PROFILE:-swap}" SKIP_DEPLOY="${SKIP_DEPLOY:-1}" \
  SKIP_FRAMEWORK_ONLY="${SKIP_FRAMEWORK_ONLY:-1}" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}" scripts/test.sh
echo "swap-check: the test command passes with examples/orders as the handler" >&2
