#!/bin/sh
# The install and start steps of the container image, in one script: the
# Dockerfile runs them, and CI runs them (deploy/check-recipe.sh) in a fresh
# virtual environment followed by a health probe, so the steps the image takes
# are proven even where no container engine runs.
#
#   recipe.sh install   make a virtual environment at $WANDERER_PREFIX and
#                       install the program (not editable) from this source tree,
#                       with this script and healthcheck.py in its bin/
#   recipe.sh start     become the program: `wanderer-realtime run` on
#                       $WANDERER_CONFIG, in $WANDERER_DATA_DIR, so that a
#                       relative [app] data_dir (the default "data") puts the
#                       journal on the data volume
#   recipe.sh COMMAND [ARGS]
#                       any other command of the program (doctor, tree,
#                       check-config, events, replay...) in $WANDERER_DATA_DIR,
#                       on $WANDERER_CONFIG unless ARGS give another --config;
#                       import-env and bench take no config
#
# `start` replaces this shell with the program (exec), so the program is the
# process that `docker stop` (or CI) signals: SIGTERM shuts it down in order
# and it exits 0.
set -eu

prefix="${WANDERER_PREFIX:-/opt/wanderer-realtime}"
config="${WANDERER_CONFIG:-/config/config.toml}"
data_dir="${WANDERER_DATA_DIR:-/data}"

case "${1:-}" in
install)
    source_dir=$(cd "$(dirname "$0")/.." && pwd)
    "${PYTHON:-python3}" -m venv "$prefix"
    "$prefix/bin/python" -m pip install --quiet --disable-pip-version-check "$source_dir"
    cp "$source_dir/deploy/recipe.sh" "$source_dir/deploy/healthcheck.py" "$prefix/bin/"
    chmod 0755 "$prefix/bin/recipe.sh" "$prefix/bin/healthcheck.py"
    ;;
start)
    cd "$data_dir"
    exec "$prefix/bin/wanderer-realtime" run --config "$config"
    ;;
"" | -h | --help)
    echo "usage: $0 install | start | COMMAND [ARGS...]" >&2
    exit 2
    ;;
import-env | bench)
    exec "$prefix/bin/wanderer-realtime" "$@"
    ;;
*)
    command=$1
    shift
    cd "$data_dir"
    exec "$prefix/bin/wanderer-realtime" "$command" --config "$config" "$@"
    ;;
esac
