#!/usr/bin/env bash
# run-owned.sh OWNER_PID LOG CMD...: runs CMD with its output appended to LOG (its PID in LOG.pid) until CMD
# exits or OWNER_PID is gone, so a process started by a test never outlives the test binary.
set -u
owner=$1; log=$2; shift 2
"$@" >>"$log" 2>&1 < /dev/null &
child=$!
echo "$child" > "$log.pid"
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
while kill -0 "$owner" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.3; done
kill -TERM "$child" 2>/dev/null
wait "$child"
