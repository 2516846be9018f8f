#!/usr/bin/env bash
# `sam local invoke` for real, without a Docker engine: the function's bootstrap runs in a
# container started by podman (installed from Debian's packages when missing and run as root),
# from a small base image assembled here from the host's own libraries. Every fixture in
# handler/events/ is invoked and its partial batch response compared with handler/events/responses/.
#
# Where it cannot run, it says why in one line and exits 0: it proves parity, it is not needed
# to build or run the product.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state="$root/.sam-local"
image=localhost/sqs-handler-base:local

cannot() { echo "sam-local: skipped: $*" >&2; exit 0; }
say() { echo "sam-local: $*" >&2; }

if [ "$(uname -m)" != x86_64 ]; then cannot "this script builds an x86_64 base image; this machine is $(uname -m)"; fi
if docker info >/dev/null 2>&1; then
  engine=docker
else
  engine=podman
  if ! command -v podman >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      cannot "no Docker engine and no podman; install podman (Debian: apt-get install podman runc) and run again"
    fi
    say "installing podman and runc from Debian's packages"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc; } \
      >/dev/null 2>&1 || cannot "podman could not be installed with apt-get"
  fi
fi

rm -rf "$state" && mkdir -p "$state/function" "$state/rootfs"
cargo build --quiet -p handler --bin bootstrap
cp target/debug/bootstrap "$state/function/bootstrap"

if [ "$engine" = podman ]; then
  # Containers may not raise resource limits here: keep them at or below the host's hard limits.
  nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
  cat >"$state/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  export CONTAINERS_CONF="$state/containers.conf"
  podman system service --time=0 "unix://$state/podman.sock" >"$state/podman.log" 2>&1 &
  echo $! >"$state/podman.pid"
  trap 'kill "$(cat "$state/podman.pid")" 2>/dev/null || true' EXIT
  export DOCKER_HOST="unix://$state/podman.sock"
  for _ in $(seq 50); do [ -S "$state/podman.sock" ] && break; sleep 0.1; done
fi

# The public Lambda images cannot be pulled here: a base image with the host's glibc, sh, mv and
# chmod (SAM's image build runs those) and whatever the bootstrap links against.
for bin in /bin/sh /bin/mv /bin/chmod "$state/function/bootstrap"; do
  for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
    mkdir -p "$state/rootfs$(dirname "$lib")" && cp -L "$lib" "$state/rootfs$lib"
  done
done
mkdir -p "$state/rootfs/bin" "$state/rootfs/tmp" "$state/rootfs/var/task" "$state/rootfs/var/runtime"
cp -L /bin/sh /bin/mv /bin/chmod "$state/rootfs/bin/"
tar -C "$state/rootfs" -c . | $engine import - "$image" >/dev/null 2>&1

# The template as `sam build` would leave it: code already built, in a folder. (sam.sh installs
# the SAM CLI, whose Python this uses, if it is not there yet.)
scripts/sam.sh --version >/dev/null
.venv/sam/bin/python - "$root/template.yaml" "$state" <<'PY'
import re, sys
template, state = sys.argv[1], sys.argv[2]
text = open(template).read()
text = text.replace("      CodeUri: .\n", f"      CodeUri: {state}/function\n")
text = re.sub(r"    Metadata:\n      BuildMethod: rust-cargolambda\n      BuildProperties:\n        Binary: bootstrap\n", "", text)
open(f"{state}/template.yaml", "w").write(text)
PY

failed=0
for event in handler/events/*.json; do
  name=$(basename "$event")
  scripts/sam.sh local invoke HandlerFunction -e "$event" --template "$state/template.yaml" \
    --invoke-image "$image" --skip-pull-image --parameter-overrides Architecture=x86_64 \
    >"$state/$name.out" 2>"$state/$name.err" || { say "FAIL $name: sam local invoke failed; see $state/$name.err"; failed=1; continue; }
  # stdout holds the response first, then the function's log lines.
  if .venv/sam/bin/python - "$state/$name.out" "handler/events/responses/$name" <<'PY'
import json, sys
got, _ = json.JSONDecoder().raw_decode(open(sys.argv[1]).read().lstrip())
sys.exit(0 if got == json.load(open(sys.argv[2])) else 1)
PY
  then say "ok   $name"; else say "FAIL $name: $(head -c 300 "$state/$name.out")"; failed=1; fi
done
[ "$failed" = 0 ] && say "every fixture answered as expected under sam local invoke ($engine)"
exit "$failed"
