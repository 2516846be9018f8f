# Sourced by the test command's two lanes (scripts/test.sh, scripts/ship-checks.sh): `step NAME`
# starts a step, prints its heading with the time since the test command began, and records how
# long the lane's previous step took in STEPS_FILE, which scripts/test.sh prints as a table at the
# end. `step` with no name ends the lane's last step.
STEPS_LANE=${STEPS_LANE:-tests}
STEPS_FILE=${STEPS_FILE:-/dev/null}
STEPS_STARTED=${STEPS_STARTED:-$(date +%s)}
steps_current=
steps_current_started=0

step() {
  local now
  now=$(date +%s)
  if [ -n "$steps_current" ]; then
    printf '%s\t%s\t%d\t%d\n' "$STEPS_LANE" "$steps_current" "$((steps_current_started - STEPS_STARTED))" \
      "$((now - steps_current_started))" >>"$STEPS_FILE"
  fi
  steps_current=$*
  steps_current_started=$now
  if [ -n "$*" ]; then printf '\n== %s: %s (%d s in)\n' "$STEPS_LANE" "$*" "$((now - STEPS_STARTED))"; fi
}
