#!/usr/bin/env bash
# The public API of the published crates against the last release: a change that breaks it must
# come with a version that allows it (semver; before 1.0 the minor version). Compares with the
# newest `v*` tag, and says so when there is none yet. Installs cargo-semver-checks on first
# use (several minutes, once per machine).
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.51.0

if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "semver: not a git checkout, so no release tags to compare with: run it in the repository" >&2
  exit 1
fi
tag=$(git tag --list 'v*' --sort=-version:refname | head -n 1)
if [ -z "$tag" ]; then
  echo "semver: no release tag (v*) yet: nothing to compare the public API with; the first release sets the baseline" >&2
  exit 0
fi
if [[ "$(cargo semver-checks --version 2>/dev/null)" != *"$version"* ]]; then
  echo "semver: installing cargo-semver-checks $version (several minutes, once per machine)" >&2
  cargo install --quiet --locked cargo-semver-checks --version "$version"
fi
echo "semver: the public API of sqs-batch and local-runner against $tag" >&2
cargo semver-checks check-release -p sqs-batch -p local-runner --baseline-rev "$tag"
