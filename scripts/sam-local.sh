#!/usr/bin/env bash
# The deployed artifact, built and invoked the way SAM does it, without a Docker engine:
#
# 1. `sam build` builds the functions with cargo-lambda (from PyPI, into .venv/cargo-lambda):
#    template.yaml and template-fifo.yaml (the user's function; x86_64, and arm64 where the
#    aarch64-unknown-linux-gnu target is installed), and the framework's test template
#    (tests/templates/standard.yaml, whose function panics on `panic-` messages).
# 2. `sam local invoke` runs each artifact `sam build` produced in a container started by podman
#    (installed from Debian's packages when missing and run as root), from a small base image
#    assembled from the host's own libraries, because public Lambda images cannot be pulled
#    everywhere.
# 3. Every event of handler/events/ must get the response on file in handler/events/responses/,
#    and every event of tests/events/ the one in tests/events/responses/: among them a message
#    whose handler panics, which must fail alone. cargo-lambda builds with panic = "abort" unless
#    the release profile says otherwise; this proves the build users deploy catches panics.
#
# Where it cannot run, it says why in one line and exits 1; the test command skips it only when
# asked to (SKIP_SAM_LOCAL=1). With SAM_LOCAL_BUILT=FILE, it creates FILE once the builds are made
# (the test command starts the deployed path then, beside the invocations).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state="$root/.sam-local"
image=localhost/sqs-handler-base:local

cannot() { echo "sam-local: cannot run: $*" >&2; exit 1; }
say() { echo "sam-local: $*" >&2; }

if [ "$(uname -m)" != x86_64 ]; then cannot "this script builds an x86_64 base image; this machine is $(uname -m)"; fi

# cargo-lambda, which `sam build` runs for BuildMethod rust-cargolambda.
PATH="$(scripts/cargo-lambda.sh):$PATH"
export PATH
scripts/sam.sh --version >/dev/null # installs the SAM CLI if it is not there yet

# The state of an earlier run goes, unless its podman still runs (that run is still going, or
# was killed): deleting its pid file would leave nothing to stop it by.
if pid=$(scripts/podman.sh running "$state"); then
  cannot "the podman of an earlier run is still up (pid $pid): wait for that run to end, or stop it with scripts/podman.sh stop $state"
fi
rm -rf "$state" && mkdir -p "$state/rootfs"
# shellcheck source=scripts/steps.sh
. scripts/steps.sh # steps_cpu: the CPU time of what this script waited for, to report each build's
build() { # build <name> <template> [parameter overrides...]
  local name=$1 template=$2 started=$SECONDS cpu
  shift 2
  steps_cpu && cpu=$steps_cpu_ticks
  scripts/sam.sh build --template "$template" --build-dir "$state/build/$name" "$@" >"$state/build-$name.log" 2>&1 ||
    { tail -n 30 "$state/build-$name.log" >&2; cannot "sam build of $template failed; see $state/build-$name.log"; }
  steps_cpu
  say "built  $template ($name) in $((SECONDS - started)) s, $(((steps_cpu_ticks - cpu) / steps_ticks)) s of CPU"
}
build standard template.yaml --parameter-overrides Architecture=x86_64
build fifo template-fifo.yaml --parameter-overrides Architecture=x86_64
# The framework's test function never runs handler/: SKIP_FRAMEWORK_ONLY=1 (scripts/swap-check.sh)
# leaves it to the main test command.
framework=$([ "${SKIP_FRAMEWORK_ONLY:-}" = 1 ] && echo 0 || echo 1)
[ "$framework" = 1 ] && build test tests/templates/standard.yaml
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  build standard-arm64 template.yaml --parameter-overrides Architecture=arm64
  file "$state/build/standard-arm64/HandlerFunction/bootstrap" | grep -q aarch64 || cannot "the arm64 build is not an aarch64 binary"
else
  say "arm64: not built (the aarch64-unknown-linux-gnu target is not installed: rustup target add aarch64-unknown-linux-gnu)"
fi
if [ -n "${SAM_LOCAL_BUILT:-}" ]; then touch "$SAM_LOCAL_BUILT"; fi

docker_host=$(scripts/podman.sh start "$state") || cannot "no container engine"
trap 'scripts/podman.sh stop "$state"' EXIT
if [ -n "$docker_host" ]; then export DOCKER_HOST="$docker_host" CONTAINERS_CONF="$state/containers.conf"; fi
engine=$([ -n "$docker_host" ] && echo podman || echo docker)
# The base image: the host's glibc, sh, mv and chmod (SAM's image build runs those), and whatever
# the built bootstraps link against.
scripts/podman.sh image "$image" "$state" "$state"/build/*/*/bootstrap || cannot "the base image could not be built"

failed=0
# The events' queues are not real, so the functions set no visibility (RETRY_BACKOFF_SECS=0; the
# end-to-end tests check the back-off on real queues); a `*skip-group.json` event runs with
# FIFO_ON_FAILURE=skip-group. `--env-vars` only reaches variables the template declares.
printf '{"Parameters": {"RETRY_BACKOFF_SECS": "0"}}' >"$state/env.json"
printf '{"Parameters": {"RETRY_BACKOFF_SECS": "0", "FIFO_ON_FAILURE": "skip-group"}}' >"$state/env-skip-group.json"
invoke() { # invoke <build> <function> <event> <expected response>
  local build=$1 function=$2 event=$3 expected=$4 name env="$state/env.json"
  name="$build-$(basename "$event")"
  case "$event" in *skip-group.json) env="$state/env-skip-group.json" ;; esac
  scripts/sam.sh local invoke "$function" -e "$event" --template "$state/build/$build/template.yaml" \
    --env-vars "$env" --invoke-image "$image" --skip-pull-image --parameter-overrides Architecture=x86_64 \
    >"$state/$name.out" 2>"$state/$name.err" || { say "FAIL $name: sam local invoke failed; see $state/$name.err"; failed=1; return; }
  # stdout holds the response first, then the function's log lines.
  if .venv/sam/bin/python - "$state/$name.out" "$expected" <<'PY'
import json, sys
got, _ = json.JSONDecoder().raw_decode(open(sys.argv[1]).read().lstrip())
sys.exit(0 if got == json.load(open(sys.argv[2])) else 1)
PY
  then say "ok   $name"; else say "FAIL $name: $(head -c 300 "$state/$name.out")"; failed=1; fi
}
for event in handler/events/*.json; do
  invoke standard HandlerFunction "$event" "handler/events/responses/$(basename "$event")"
done
for event in handler/events/fifo*.json; do
  [ -e "$event" ] && invoke fifo HandlerFunction "$event" "handler/events/responses/$(basename "$event")"
done
if [ "$framework" = 1 ]; then
  for event in tests/events/*.json; do
    invoke test TestFunction "$event" "tests/events/responses/$(basename "$event")"
  done
else
  say "the framework's test function: not built or invoked (SKIP_FRAMEWORK_ONLY=1; the main test command runs it)"
fi
[ "$failed" = 0 ] && say "every event answered as expected by the artifacts sam build made ($engine)"
exit "$failed"
