#!/usr/bin/env bash
# What a function's code is made of: `cargo bloat --crates` (the .text section by crate) over the
# release builds bench/weight.sh weighs, with their symbols kept:
#
#   (a) the anchor: tests/plain-function, lambda_runtime + aws_lambda_events alone;
#   (b) the minimal handler a new project gets (templates/sqs-function, default features);
#   (c) the same project with its `idempotency` and `large-payloads` features: the crates
#       handler/ links.
#
# The builds go to target/bloat (the release profile with `strip = false` would otherwise replace
# the stripped builds in target/release). Installs cargo-bloat on first use (about a minute, once
# per machine). Prints each table; `TOP=N` sets how many crates (default 25).
#
#   bench/bloat.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=0.12.1
top=${TOP:-25}
case $top in '' | *[!0-9]*) echo "bloat: TOP must be a number of crates, got '$top'" >&2; exit 2 ;; esac
if [[ "$(cargo bloat --version 2>/dev/null)" != *"$version"* ]]; then
  echo "bloat: installing cargo-bloat $version (about a minute, once per machine)" >&2
  cargo install --quiet --locked cargo-bloat --version "$version"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/bloat.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="$root/target/bloat" CARGO_PROFILE_RELEASE_STRIP=false

echo "## (a) anchor: tests/plain-function"
cargo bloat --release --locked -p plain-function --bin plain-bootstrap --crates -n "$top"

(cd "$work" && "$root/scripts/sam.sh" init --location "$root/templates/sqs-function" --no-input --name minimal) >/dev/null
cp Cargo.lock "$work/minimal/"
cd "$work/minimal"
echo "## (b) minimal: a new project's handler"
cargo bloat --release -p handler --bin bootstrap --crates -n "$top"
echo "## (c) the new project with idempotency and large payloads (handler/'s crates)"
cargo bloat --release -p handler --bin bootstrap --features idempotency,large-payloads --crates -n "$top"
