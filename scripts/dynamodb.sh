#!/usr/bin/env bash
# A local DynamoDB on the host, no Docker, no download at first use: moto's server (pure Python),
# for the idempotency layer's DynamoDB store. install | start | stop | endpoint.
#
#   scripts/dynamodb.sh install   # pinned moto[server] into .venv/moto (idempotent)
#   scripts/dynamodb.sh start     # start (installing first if needed), wait for it, print the endpoint
#   scripts/dynamodb.sh stop      # stop the instance this script started, by its recorded pid
#   scripts/dynamodb.sh endpoint  # print the running instance's endpoint
#
# LocalStack's own DynamoDB fetches DynamoDB Local (a Java zip) at first use, which a machine
# without general network access cannot do; moto's DynamoDB runs from its PyPI package alone and
# keeps what the layer relies on: conditional writes, ReturnValuesOnConditionCheckFailure, TTL
# settings (it does not expire items itself; the layer never relies on TTL deletion).
#
# Environment:
#   DYNAMODB_PORT   port to bind on 127.0.0.1 (default 4569; 0 picks a free ephemeral port)
#   DYNAMODB_STATE  folder for pid, port and log (default .localstack/dynamodb)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv/moto"
state="${DYNAMODB_STATE:-$root/.localstack/dynamodb}"
python="$(command -v python3.11 || command -v python3)"
pins=('moto[server]==5.2.5')

say() { echo "dynamodb: $*" >&2; }

install() {
  if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
    return 0
  fi
  say "installing ${pins[0]} into $venv (about 20 s)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
}

running_pid() {
  local pid
  [ -f "$state/pid" ] || return 1
  pid=$(cat "$state/pid")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

endpoint() {
  running_pid >/dev/null || { say "not running (start it with scripts/dynamodb.sh start)"; return 1; }
  echo "http://127.0.0.1:$(cat "$state/port")"
}

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  if running_pid >/dev/null; then endpoint; return 0; fi
  install
  mkdir -p "$state"
  local port="${DYNAMODB_PORT:-4569}"
  [ "$port" = 0 ] && port=$(free_port)
  # moto answers each request on a thread of its own, and two conditional writes of one new key
  # at the same moment could both succeed (seen: two idempotency claims of one key, 3 ms apart,
  # in the first test after a start), which DynamoDB never allows. One request at a time makes
  # its conditions atomic, as DynamoDB's are.
  setsid "$venv/bin/python" -c '
import sys, threading
import moto.server as server
serve, lock = server.run_simple, threading.Lock()
def one_at_a_time(app):
    def locked(environ, start_response):
        with lock:
            return list(app(environ, start_response))
    return locked
server.run_simple = lambda host, port, app, **options: serve(host, port, one_at_a_time(app), **options)
server.main(sys.argv[1:])
' -H 127.0.0.1 -p "$port" >"$state/log" 2>&1 </dev/null &
  echo $! >"$state/pid"
  echo "$port" >"$state/port"
  local url="http://127.0.0.1:$port" deadline=$((SECONDS + 60))
  # ListTables answers once the DynamoDB backend is up.
  until "$venv/bin/python" - "$url" <<'PY' 2>/dev/null
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=b"{}", headers={
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
})
urllib.request.urlopen(request, timeout=2)
PY
  do
    if ! running_pid >/dev/null; then
      say "exited during start; last lines of $state/log:"; tail -n 20 "$state/log" >&2; return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "not answering after 60 s; see $state/log"; stop; return 1
    fi
    sleep 0.2
  done
  say "ready at $url (pid $(cat "$state/pid"))"
  echo "$url"
}

stop() {
  local pid
  if ! pid=$(running_pid); then rm -f "$state/pid"; return 0; fi
  # A frozen instance (a test's outage) must be woken to act on SIGTERM.
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then say "did not stop in 5 s; killing pid $pid"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$state/pid"
  say "stopped (pid $pid)"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  endpoint) endpoint ;;
  *) echo "usage: scripts/dynamodb.sh install|start|stop|endpoint" >&2; exit 2 ;;
esac
