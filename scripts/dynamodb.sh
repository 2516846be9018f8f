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

# shellcheck source=scripts/server.sh
. "$(dirname "$(readlink -f "$0")")/server.sh"
name=dynamodb

install() { install_venv 'import moto.server' "about 20 s"; }

probe() {
  # ListTables answers once the DynamoDB backend is up.
  "$venv/bin/python" - "$1" <<'PY'
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], data=b"{}", headers={
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
})
urllib.request.urlopen(request, timeout=2)
PY
}

start() {
  install
  mkdir -p "$state"
  local port
  port=$(port_of "${DYNAMODB_PORT:-4569}")
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
  launched $! "$port" 60 "DynamoDB"
}

stop() { stop_within 5; }

main "$@"
