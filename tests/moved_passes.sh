#!/usr/bin/env bash
# `make test`'s moved-clock passes: every non-browser test on SQLite with the clock moved to
# each moment, two at a time (a CI machine has two cores and a pass is one process). Each
# pass keeps its own temporary folder and log; the logs are printed in order afterwards.
# Usage: tests/moved_passes.sh PYTHON MOMENT...
set -u
python=$1
shift
moments=("$@")
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
status=0
for ((first = 0; first < ${#moments[@]}; first += 2)); do
  pair=("${moments[@]:first:2}")
  pids=()
  for moment in "${pair[@]}"; do
    CRM_TEST_CLOCK=$moment "$python" -m pytest -q -m "not e2e" -p no:cacheprovider \
      --basetemp="$workdir/$moment" >"$workdir/$moment.log" 2>&1 &
    pids+=($!)
  done
  for index in "${!pids[@]}"; do
    if ! wait "${pids[$index]}"; then
      status=1
    fi
    echo "== tests on SQLite with the clock moved to ${pair[$index]} (browser journeys aside)"
    cat "$workdir/${pair[$index]}.log"
  done
done
exit $status
