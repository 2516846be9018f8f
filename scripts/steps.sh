# Sourced by the test command's lanes (scripts/test.sh, scripts/ship-checks.sh): `step NAME`
# starts a step, prints its heading with the time since the test command began, and records how
# long the lane's previous step took in STEPS_FILE, which scripts/test.sh prints as a table at the
# end. `step` with no name ends the lane's last step.
#
# Beside the time, each step records the CPU time its commands used (user and system, of every
# process the lane's shell reaped during the step, and of theirs): a run on two cores is bounded
# by its CPU-seconds as much as by the order of its steps, and this says where they go. The shell
# reaps a background job (the installs, another lane or chain) when it ends, so that job's CPU
# counts in the step running then: the installs' usually in the lints, a lane's in the step that
# waits for it unless it ended sooner (its own rows say what it did). A server a step starts in
# the background (LocalStack, moto, podman and its containers) is never reaped by the lane, so its
# CPU counts only in the machine's total.
STEPS_LANE=${STEPS_LANE:-tests}
STEPS_FILE=${STEPS_FILE:-/dev/null}
STEPS_STARTED=${STEPS_STARTED:-$(date +%s)}
steps_current=
steps_current_started=0
steps_current_cpu=0
steps_ticks=$(getconf CLK_TCK 2>/dev/null || echo 100)

# The CPU time, in clock ticks, of the finished children this shell waited for (cutime and cstime
# of /proc/PID/stat), read without a fork: a subshell would count its own children instead.
steps_cpu() {
  local stat
  read -r stat <"/proc/$BASHPID/stat" || { steps_cpu_ticks=0; return; }
  # After the command name, which may hold spaces: field 3 (state) onwards.
  stat=${stat##*) }
  # shellcheck disable=SC2086 # split on purpose
  set -- $stat
  steps_cpu_ticks=$((${14} + ${15}))
}

step() {
  local now
  now=$(date +%s)
  steps_cpu
  if [ -n "$steps_current" ]; then
    printf '%s\t%s\t%d\t%d\t%d\n' "$STEPS_LANE" "$steps_current" "$((steps_current_started - STEPS_STARTED))" \
      "$((now - steps_current_started))" "$(((steps_cpu_ticks - steps_current_cpu + steps_ticks / 2) / steps_ticks))" >>"$STEPS_FILE"
  fi
  steps_current=$*
  steps_current_started=$now
  steps_current_cpu=$steps_cpu_ticks
  if [ -n "$*" ]; then printf '\n== %s: %s (%d s in)\n' "$STEPS_LANE" "$*" "$((now - STEPS_STARTED))"; fi
}
