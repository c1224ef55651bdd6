# Sourced by the editor suites.  wait_for_file FILE PID: wait (up to 180 s) until FILE is non-empty, giving up early
# when process PID has exited; returns 0 when FILE is there -- how the suites wait for a daemon's connection file and
# for remote_servers.py's remotes.json.
wait_for_file() {
  for _ in $(seq 1 1800); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  [ -s "$1" ]
}
