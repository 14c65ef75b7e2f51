#!/usr/bin/env bash
# CI's proof of the container recipe without a container engine: the image's
# own steps (deploy/recipe.sh install, then start) in a fresh virtual
# environment outside the source tree, the image's health probe against the
# started program, then SIGTERM to the process the start step became, which
# must shut down in order and exit 0 with its journal in the data directory.
#
# It runs the shipped demo world (the simulator) on free ports, so it needs
# no outside service; the install needs the package index (or a pip cache).
set -euo pipefail
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        # Its process group: the started process and anything it started.
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    chmod -R u+w "$work"
    rm -rf "$work"
}
trap cleanup EXIT

export WANDERER_PREFIX="$work/prefix"
export WANDERER_CONFIG="$work/config/config.toml"
export WANDERER_DATA_DIR="$work/data"
mkdir -p "$work/config" "$WANDERER_DATA_DIR"

started=$(date +%s)
# The image installs from a copy of the source made by COPY (less what
# .dockerignore leaves out); so does this, which also keeps pip's in-tree
# build directories out of the checkout.
mkdir -p "$work/source"
tar -C "$source_dir" --exclude-vcs --exclude=./build --exclude='*.egg-info' \
    --exclude=./data --exclude='__pycache__' --exclude='.*_cache' -cf - . |
    tar -C "$work/source" -xf -
echo "-- recipe.sh install (fresh virtual environment at $WANDERER_PREFIX)"
sh "$work/source/deploy/recipe.sh" install
echo "   installed in $(($(date +%s) - started)) s"

port=$("$WANDERER_PREFIX/bin/python" -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WANDERER_CONFIG" <<EOF
# The demo world on free ports; the journal goes to the default relative
# data_dir, which the start step resolves inside WANDERER_DATA_DIR.
[http]
port = $port

[simulator]
enabled = true
kills_port = 0
map_port = 0
discord_port = 0

[[maps]]
slug = "demo"
EOF
chmod a-w "$WANDERER_CONFIG" "$work/config"  # mounted read-only in the container

echo "-- recipe.sh check-config and import-env (commands through the same entry point)"
"$WANDERER_PREFIX/bin/recipe.sh" check-config >/dev/null
printf 'MAP_URL=https://wanderer.example\nMAP_NAME=corp\n' |
    "$WANDERER_PREFIX/bin/recipe.sh" import-env /dev/stdin 2>/dev/null | grep -q '^slug = "corp"$'

echo "-- recipe.sh start (from outside the source tree), then the health probe"
cd "$work"
# setsid: a process group of its own (the pid is its id), for the cleanup.
setsid "$WANDERER_PREFIX/bin/recipe.sh" start >"$work/program.log" 2>&1 &
pid=$!
if ! "$WANDERER_PREFIX/bin/python" "$WANDERER_PREFIX/bin/healthcheck.py" --wait 30; then
    echo "the started program did not become healthy; its log:" >&2
    cat "$work/program.log" >&2
    exit 1
fi
running=$(tr '\0' ' ' <"/proc/$pid/cmdline")
case "$running" in
*"wanderer-realtime run"*) ;;
*)
    echo "the start step did not exec the program (pid $pid is: $running)" >&2
    exit 1
    ;;
esac

echo "-- SIGTERM to pid $pid: an orderly shutdown and exit 0"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
if [ "$rc" -ne 0 ]; then
    echo "the program exited $rc after SIGTERM; its log:" >&2
    cat "$work/program.log" >&2
    exit 1
fi
grep -q "received SIGTERM; shutting down" "$work/program.log"
grep -q "stopped" "$work/program.log"
journal=$(find "$WANDERER_DATA_DIR" -name '*.sqlite3' | head -n 1)
if [ -z "$journal" ]; then
    echo "no journal database under $WANDERER_DATA_DIR" >&2
    exit 1
fi
echo "   exit 0, journal at $journal; recipe proven in $(($(date +%s) - started)) s"
