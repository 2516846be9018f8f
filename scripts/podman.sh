#!/usr/bin/env bash
# A Docker-compatible container engine without a Docker engine: Debian's podman (installed when
# missing and run as root), serving the Docker API on a socket of its own, and a small base
# image assembled from the host's libraries, because public images cannot be pulled everywhere.
#
#   scripts/podman.sh install              # install podman when there is no container engine
#   scripts/podman.sh start STATE          # serve on STATE/podman.sock; prints DOCKER_HOST
#   scripts/podman.sh stop STATE           # stop that service, by its recorded pid
#   scripts/podman.sh running STATE        # exit 0 while that service runs (prints its pid)
#   scripts/podman.sh image NAME STATE BINARY...   # a base image with /bin/sh, mv, chmod and
#                                                  # what the binaries link against
#   scripts/podman.sh bridge               # the podman bridge's gateway address (made if missing)
#
# With a Docker engine running, `start` prints nothing and the engine is used as it is.
set -euo pipefail

die() { echo "podman: cannot run: $*" >&2; exit 1; }

install_podman() {
  command -v podman >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "no Docker engine and no podman; install podman (Debian: apt-get install podman runc) and run again"
  fi
  echo "podman: installing podman and runc from Debian's packages" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc; } \
    >/dev/null 2>&1 || die "podman could not be installed with apt-get"
}

conf() { # conf STATE: containers.conf for this machine
  local state=$1 nproc
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
  echo "$state/containers.conf"
}

case "${1:-}" in
  install)
    docker info >/dev/null 2>&1 || install_podman
    ;;
  start)
    state=${2:?usage: scripts/podman.sh start STATE}
    mkdir -p "$state"
    if docker info >/dev/null 2>&1; then exit 0; fi
    install_podman
    CONTAINERS_CONF=$(conf "$state") podman system service --time=0 "unix://$state/podman.sock" >"$state/podman.log" 2>&1 &
    echo $! >"$state/podman.pid"
    for _ in $(seq 100); do [ -S "$state/podman.sock" ] && break; sleep 0.1; done
    [ -S "$state/podman.sock" ] || die "the podman service did not start; see $state/podman.log"
    echo "unix://$state/podman.sock"
    ;;
  running)
    state=${2:?usage: scripts/podman.sh running STATE}
    [ -f "$state/podman.pid" ] && kill -0 "$(cat "$state/podman.pid")" 2>/dev/null && cat "$state/podman.pid"
    ;;
  stop)
    state=${2:?usage: scripts/podman.sh stop STATE}
    if [ -f "$state/podman.pid" ]; then kill "$(cat "$state/podman.pid")" 2>/dev/null || true; rm -f "$state/podman.pid"; fi
    ;;
  image)
    name=${2:?usage: scripts/podman.sh image NAME STATE BINARY...}; state=${3:?}; shift 3
    rootfs="$state/rootfs" && rm -rf "$rootfs" && mkdir -p "$rootfs"
    for bin in /bin/sh /bin/mv /bin/chmod "$@"; do
      for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
        mkdir -p "$rootfs$(dirname "$lib")" && cp -L "$lib" "$rootfs$lib"
      done
    done
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/var/task" "$rootfs/var/runtime" "$rootfs/var/rapid" "$rootfs/opt"
    cp -L /bin/sh /bin/mv /bin/chmod "$rootfs/bin/"
    engine=podman; docker info >/dev/null 2>&1 && engine=docker
    export CONTAINERS_CONF="${CONTAINERS_CONF:-$(conf "$state")}"
    tar -C "$rootfs" -c . | $engine import - "$name" >/dev/null
    ;;
  bridge)
    install_podman
    gateway=$(podman network inspect podman --format '{{range .Subnets}}{{.Gateway}}{{end}}' 2>/dev/null || true)
    [ -n "$gateway" ] || die "podman has no network named podman"
    # The bridge comes up with the first container on it: start one if it is not there yet.
    if ! ip -4 addr show 2>/dev/null | grep -q "inet $gateway/"; then
      export CONTAINERS_CONF="${CONTAINERS_CONF:-$(conf "$(mktemp -d)")}"
      image=$(podman images --format '{{.Repository}}:{{.Tag}}' | head -n 1)
      [ -n "$image" ] || die "no image to start the podman bridge with"
      podman run --rm --network podman "$image" /bin/sh -c true >/dev/null 2>&1 || die "cannot start a container on the podman bridge"
    fi
    echo "$gateway"
    ;;
  *) echo "usage: scripts/podman.sh install|start|stop|running|image|bridge" >&2; exit 2 ;;
esac
