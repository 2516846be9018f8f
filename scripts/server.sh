# What scripts/localstack.sh and scripts/dynamodb.sh share (sourced, not run): a Python server
# from a pinned venv, on 127.0.0.1, with its pid, port and log in "$state", started in the
# background and stopped by the pid it recorded.
#
# The sourcing script sets `name`, `venv`, `state`, `python` and `pins`, and defines `install`,
# `start` (which calls `launched`) and `probe URL` (exit 0 once the server answers), then calls
# `main "$@"`.

say() { echo "$name: $*" >&2; }

# Installs the pins into the venv, unless `$1` (Python) already imports what it needs there.
install_venv() {
  local check=$1 takes=$2
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then
    return 0
  fi
  say "installing ${pins[0]} into $venv ($takes)"
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
  running_pid >/dev/null || { say "not running (start it with scripts/$name.sh start)"; return 1; }
  echo "http://127.0.0.1:$(cat "$state/port")"
}

# The port asked for in `$1` (the script's *_PORT), a free one for 0.
port_of() {
  if [ "$1" = 0 ]; then
    "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
  else
    echo "$1"
  fi
}

# Records the server just started in the background (pid `$1`, port `$2`), waits up to `$3`
# seconds for `probe` to pass, and prints its URL; `$4` is what is ready.
launched() {
  local pid=$1 port=$2 limit=$3 what=$4
  echo "$pid" >"$state/pid"
  echo "$port" >"$state/port"
  local url="http://127.0.0.1:$port" deadline=$((SECONDS + limit))
  until probe "$url" 2>/dev/null; do
    if ! running_pid >/dev/null; then
      say "exited during start; last lines of $state/log:"; tail -n 20 "$state/log" >&2; return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$what not ready after $limit s; see $state/log"; stop; return 1
    fi
    sleep 0.2
  done
  say "$what ready at $url (pid $pid)"
  echo "$url"
}

# Stops the recorded pid: SIGTERM (after SIGCONT, which a test's frozen server needs to act on
# it), then SIGKILL of the same pid after `$1` seconds.
stop_within() {
  local grace=$1 pid
  if ! pid=$(running_pid); then rm -f "$state/pid"; return 0; fi
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then say "did not stop in $grace s; killing pid $pid"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$state/pid"
  say "stopped (pid $pid)"
}

main() {
  case "${1:-}" in
    install) install ;;
    start) if running_pid >/dev/null; then endpoint; else start; fi ;;
    stop) stop ;;
    endpoint) endpoint ;;
    *) echo "usage: scripts/$name.sh install|start|stop|endpoint" >&2; exit 2 ;;
  esac
}
