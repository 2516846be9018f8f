#!/usr/bin/env bash
# LocalStack on the host, SQS only, no Docker: install | start | stop | endpoint.
#
#   scripts/localstack.sh install   # pinned localstack-core into .venv/localstack (idempotent)
#   scripts/localstack.sh start     # start (installing first if needed), wait for SQS, print the endpoint
#   scripts/localstack.sh stop      # stop the instance this script started, by its recorded pid
#   scripts/localstack.sh endpoint  # print the running instance's endpoint
#
# Environment:
#   LOCALSTACK_PORT   port to bind on 127.0.0.1 (default 4566; 0 picks a free ephemeral port)
#   LOCALSTACK_STATE  folder for pid, port, log and data (default .localstack/default), so a test
#                     run and a dev instance can live side by side
#   LOCALSTACK_SERVICES      services to run (default sqs,sns,events,s3: the queue and what feeds it)
#   LOCALSTACK_FULL=1        the full runtime (Lambda, CloudFormation, ...), in .venv/localstack-full
#   LOCALSTACK_ALSO_LISTEN   one more address to listen on besides 127.0.0.1 (the podman bridge,
#                            for function containers); never 0.0.0.0
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/localstack"
extra=base-runtime
if [ "${LOCALSTACK_FULL:-}" = 1 ]; then venv="$root/.venv/localstack-full"; extra=runtime; fi
state="${LOCALSTACK_STATE:-$root/.localstack/default}"

# localstack-core 2026.x needs Python 3.13; 4.13.1 is the last release whose SQS works on 3.11.
# cbor2 6 breaks the runtime's plugin loading; pyOpenSSL 26 breaks its self-signed certificate.
# The default gateway (twisted, with keep-alive, as users get it) needs service_identity, and
# cryptography below 47 so that pyOpenSSL 25 keeps working. EventBridge (`events`) runs on moto's
# models, which the base runtime leaves out: moto-ext with its events extra, and python-crontab.
py313="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")/versions/3.13.0/bin/python3.13"
common=('cbor2<6' 'pyopenssl<26' 'service_identity' 'cryptography<47' 'moto-ext[events]==5.1.54' 'python-crontab==3.4.0')
if [ -x "$py313" ]; then
  python="$py313"; pins=("localstack-core[$extra]==2026.3.0" "${common[@]}")
else
  python="$(command -v python3.11 || command -v python3)"
  pins=("localstack-core[$extra]==4.13.1" "${common[@]}")
fi

# shellcheck source=scripts/server.sh
. "$(dirname "$(readlink -f "$0")")/server.sh"
name=localstack

# Runs LocalStack with each IPv4 listener bound to its host in GATEWAY_LISTEN, in order (see start).
launcher='
import os, runpy
from twisted.internet import endpoints
hosts = [entry.rsplit(":", 1)[0] for entry in os.environ["GATEWAY_LISTEN"].split(",")]
tcp4 = endpoints.TCP4ServerEndpoint
def bound(reactor, port, backlog=50, interface=""):
    return tcp4(reactor, port, backlog, interface or hosts.pop(0))
endpoints.TCP4ServerEndpoint = bound
runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)
'


install() {
  install_venv 'import localstack.runtime.main, service_identity, moto, crontab' \
    "about 30 s; the full runtime about a minute"
}

probe() {
  "$venv/bin/python" - "$1" <<'PY'
import json, sys, urllib.request
health = json.load(urllib.request.urlopen(sys.argv[1] + "/_localstack/health", timeout=2))
sys.exit(0 if health.get("services", {}).get("sqs") in ("available", "running") else 1)
PY
}

start() {
  install
  mkdir -p "$state/data"
  local port
  port=$(port_of "${LOCALSTACK_PORT:-4566}")
  # The default gateway (twisted) keeps connections alive, as LocalStack users get it. It ignores
  # the host of GATEWAY_LISTEN for IPv4 (localstack/runtime/server/twisted.py binds every
  # interface), so the launcher below hands that host to twisted: it listens on 127.0.0.1 only.
  # OVERRIDE_IN_DOCKER=0 and FILESYSTEM_ROOT keep it in its own folder; the SKIP/DNS settings stop
  # outbound attempts; SQS_ENDPOINT_STRATEGY=off gives queue URLs on 127.0.0.1 instead of a public
  # DNS name.
  local listen="127.0.0.1:$port"
  case "${LOCALSTACK_ALSO_LISTEN:-}" in
    "") ;;
    0.0.0.0 | "[::]" | ::) say "LOCALSTACK_ALSO_LISTEN must name one address, not every one"; return 1 ;;
    *) listen="$listen,$LOCALSTACK_ALSO_LISTEN:$port" ;;
  esac
  env SERVICES="${LOCALSTACK_SERVICES:-sqs,sns,events,s3}" GATEWAY_LISTEN="$listen" LOCALSTACK_HOST="127.0.0.1:$port" \
    SQS_ENDPOINT_STRATEGY=off DISABLE_EVENTS=1 \
    SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 SQS_DISABLE_CLOUDWATCH_METRICS=1 \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$state/data" \
    setsid "$venv/bin/python" -c "$launcher" >"$state/log" 2>&1 </dev/null &
  # SIGTERM sometimes hangs LocalStack's shutdown: stop gives it 10 s.
  launched $! "$port" 90 "SQS"
}

stop() { stop_within 10; }

main "$@"
