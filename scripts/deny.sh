#!/usr/bin/env bash
# cargo deny: security advisories, licenses, bans and sources of every dependency, for every
# target platform. Installs cargo-deny on first use (a few minutes, once per machine).
#
# Advisories are checked offline against a snapshot of the RustSec advisory database:
# ADVISORY_DB (default ../shared/advisory-db, beside the checkout) is copied into
# target/advisory-dbs as the git repository cargo-deny expects. Without a snapshot, cargo-deny
# fetches the database itself, which needs the network; SKIP_ADVISORIES=1 checks the rest only.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2

if [[ "$(cargo deny --version 2>/dev/null)" != *"$version"* ]]; then
  echo "deny: installing cargo-deny $version (a few minutes, once per machine)" >&2
  cargo install --quiet --locked cargo-deny --version "$version"
fi
# cargo-deny reads the crates of every target platform, which a Linux build never downloads.
cargo fetch --locked --quiet

checks=(advisories licenses bans sources)
snapshot="${ADVISORY_DB:-../shared/advisory-db}"
if [ -d "$snapshot" ]; then
  root="$PWD/target/advisory-dbs"
  # The folder name cargo-deny derives from the default database URL.
  db="$root/advisory-db-3157b0e258782691"
  commit=$(sed -n 's/^commit: //p' "$snapshot.SNAPSHOT" 2>/dev/null || true)
  date=$(sed -n 's/^commit date: //p' "$snapshot.SNAPSHOT" 2>/dev/null || true)
  date=${date:-$(date -Iseconds)}
  marker="${commit:-$(find "$snapshot" -type f -newer "$snapshot" 2>/dev/null | wc -l)}-$date"
  if [ "$(cat "$db/.snapshot" 2>/dev/null)" != "$marker" ]; then
    rm -rf "$db" && mkdir -p "$root" && cp -r "$snapshot" "$db"
    (
      cd "$db" && git init -q && git add -A
      # cargo-deny reads the database's age from its HEAD commit: date it as the snapshot.
      GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
        git -c user.name=snapshot -c user.email=snapshot@localhost -c commit.gpgsign=false commit -qm "advisory-db snapshot $commit"
    )
    echo "$marker" >"$db/.snapshot"
  fi
  echo "deny: advisories from the snapshot ${commit:-in $snapshot} of $date" >&2
  ADVISORY_DB_ROOT="$root" cargo deny --offline check "${checks[@]}"
elif [ "${SKIP_ADVISORIES:-}" = 1 ]; then
  echo "deny: SKIP_ADVISORIES=1: advisories not checked" >&2
  cargo deny --offline check "${checks[@]:1}"
else
  echo "deny: no advisory snapshot at $snapshot: fetching the database (set ADVISORY_DB, or SKIP_ADVISORIES=1)" >&2
  cargo deny check "${checks[@]}"
fi
