#!/usr/bin/env bash
# Starts the web app (gunicorn) and the background task workers (django-tasks-db) together, prints the demo
# logins once the web app answers, and stops them all cleanly on Ctrl-C (or SIGTERM/SIGHUP).
#
# Called by `make run` after migrate, load_reference, seed_demo and collectstatic; it does not prepare the
# database itself. Environment: PORT (default 8000), WEB_CONCURRENCY (gunicorn workers, default: the number
# of CPUs clamped to 2..4), TASK_WORKERS (default 2: a large results file is processed in two parts at once),
# VENV (default .venv); gunicorn also reads GUNICORN_CMD_ARGS.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
PORT=${PORT:-8000}
TASK_WORKERS=${TASK_WORKERS:-2}

if [[ -n "${WEB_CONCURRENCY:-}" ]]; then
    workers=$WEB_CONCURRENCY
else
    cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
    workers=$((cpus < 2 ? 2 : cpus > 4 ? 4 : cpus))
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if port_open; then
    echo "run_dev: 127.0.0.1:$PORT is already in use; stop that server or choose another port: make run PORT=8001" >&2
    exit 1
fi

# Each child gets its own session, so a Ctrl-C in the terminal reaches only this script, which then asks
# each child exactly once to stop (a second signal would make the task worker abandon a running task).
detach=()
command -v setsid >/dev/null && detach=(setsid)

"${detach[@]}" "$VENV/bin/gunicorn" muestra.wsgi:application \
    --bind "127.0.0.1:$PORT" --workers "$workers" --access-logfile - --graceful-timeout 10 --no-control-socket &
web_pid=$!
worker_pids=()
for _ in $(seq 1 "$TASK_WORKERS"); do
    "${detach[@]}" "$PY" manage.py db_worker --queue-name '*' &
    worker_pids+=($!)
done

stopping=0
force=0
alive() {
    local pid
    for pid in "$web_pid" "${worker_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}
stop_children() {
    stopping=1
    # A second Ctrl-C while stopping kills both at once.
    trap 'force=1' INT TERM HUP
    echo "run_dev: stopping web app (pid $web_pid) and task workers (pids ${worker_pids[*]})..." >&2
    kill -TERM "$web_pid" "${worker_pids[@]}" 2>/dev/null || true
    # Give them 20 s to finish their current request or task, then kill them.
    for _ in $(seq 1 40); do
        alive && [[ $force -eq 0 ]] || break
        sleep 0.5
    done
    if alive; then
        echo "run_dev: still running, killing them." >&2
        kill -KILL "$web_pid" "${worker_pids[@]}" 2>/dev/null || true
    fi
    wait "$web_pid" "${worker_pids[@]}" 2>/dev/null || true
    echo "run_dev: stopped." >&2
}
trap 'stop_children; exit 0' INT TERM HUP

# Wait (up to 60 s) for gunicorn to listen, then show where to go and who to log in as.
for _ in $(seq 1 120); do
    port_open && break
    if ! kill -0 "$web_pid" 2>/dev/null; then
        echo "run_dev: gunicorn exited during start-up (see above)." >&2
        stop_children
        exit 1
    fi
    sleep 0.5
done
echo
echo "Muestra is running at http://127.0.0.1:$PORT/  (admin: /admin/, API docs: /api/v1/docs)"
echo "Web app: gunicorn, $workers workers; $TASK_WORKERS task workers: manage.py db_worker. Ctrl-C stops them all."
echo
"$PY" manage.py demo_info || echo "run_dev: 'manage.py demo_info' failed: no demo logins to show." >&2
echo

# Run until either process exits on its own (a crash), then take the other one down too.
status=0
wait -n || status=$?
if [[ $stopping -eq 0 ]]; then
    if kill -0 "$web_pid" 2>/dev/null; then name="a task worker"; else name="the web app"; fi
    echo "run_dev: $name exited (status $status); stopping the other processes." >&2
    stop_children
    exit 1
fi
