#!/usr/bin/env bash
# The README's two commands as a new machine runs them: a fresh clone, an empty cargo registry
# and empty caches (CARGO_HOME beside the installed toolchain, XDG_CACHE_HOME, PIP_CACHE_DIR,
# TMPDIR), nothing on the PATH that the toolchain and the machine image do not bring. Prints the
# time of each command.
#
#   scripts/fresh-check.sh              # clones HEAD of this checkout
#   KEEP_FRESH_CHECK=1 scripts/fresh-check.sh   # keeps the folder for a look afterwards
#   FRESH_CHECK_CI=1 scripts/fresh-check.sh     # the test command through .ci/run (then swap-check)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/fresh-check.XXXXXX")
if [ -z "${KEEP_FRESH_CHECK:-}" ]; then trap 'rm -rf "$work"' EXIT; fi
git clone -q . "$work/main"
# CI has ../shared beside the checkout (the advisory database snapshot among it).
if [ -d ../shared ]; then cp -r ../shared "$work/shared"; fi

# The toolchain stays (rustup's proxies); everything cargo installed or downloaded does not.
toolchain_bin=$(dirname "$(command -v rustup)")
export CARGO_HOME="$work/cargo-home" XDG_CACHE_HOME="$work/cache" PIP_CACHE_DIR="$work/cache/pip" TMPDIR="$work/tmp"
mkdir -p "$CARGO_HOME/bin" "$XDG_CACHE_HOME" "$TMPDIR"
for tool in cargo rustc rustdoc rustup rustfmt cargo-fmt cargo-clippy clippy-driver; do
  [ -e "$toolchain_bin/$tool" ] && ln -s "$toolchain_bin/$tool" "$CARGO_HOME/bin/$tool"
done
PATH="$CARGO_HOME/bin:$(printf '%s' "$PATH" | tr ':' '\n' | grep -vx "$toolchain_bin" | paste -sd:)"
export PATH
echo "fresh-check: in $work; CARGO_HOME=$CARGO_HOME; cargo-deny on PATH: $(command -v cargo-deny || echo none)" >&2

cd "$work/main"
demo_started=$SECONDS
scripts/demo.sh
demo_time=$((SECONDS - demo_started))
test_started=$SECONDS
tested=scripts/test.sh
if [ -n "${FRESH_CHECK_CI:-}" ]; then tested=.ci/run; fi
if [ "$tested" = .ci/run ]; then CI=true .ci/run; else scripts/test.sh; fi
test_time=$((SECONDS - test_started))
printf '\nfresh-check: scripts/demo.sh %d min %02d s, %s %d min %02d s (empty caches, fresh clone)\n' \
  $((demo_time / 60)) $((demo_time % 60)) "$tested" $((test_time / 60)) $((test_time % 60))
