# syntax=docker/dockerfile:1
# The container image. Its install and start steps are deploy/recipe.sh, the
# script CI runs in a fresh virtual environment with the same health probe
# (deploy/check-recipe.sh); what CI proves and what it cannot is in the README
# ("Deploying").
#
#   docker build -t wanderer-realtime .
#   docker run -d --init -v wanderer-data:/data \
#       -v "$PWD/config.toml:/config/config.toml:ro" --env-file .env wanderer-realtime
#
# The journal lives on the /data volume (a relative [app] data_dir, such as the
# default "data", resolves under /data); the configuration is mounted read-only
# at /config/config.toml; secrets come from the environment ("env:NAME" values).

# The official slim image, pinned to a Python release (pin its digest too when
# you mirror it: this recipe could not check one).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    WANDERER_PREFIX=/opt/wanderer-realtime \
    WANDERER_CONFIG=/config/config.toml \
    WANDERER_DATA_DIR=/data \
    PATH=/opt/wanderer-realtime/bin:$PATH

COPY . /tmp/source
RUN sh /tmp/source/deploy/recipe.sh install \
    && rm -rf /tmp/source \
    && groupadd --system --gid 10001 wanderer \
    && useradd --system --uid 10001 --gid wanderer --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin wanderer \
    && mkdir -p /data /config \
    && chown wanderer:wanderer /data

USER wanderer
WORKDIR /data
VOLUME ["/data"]
# The dashboard and the health endpoints ([http] port); reachable from outside
# the container only with [http] bind = "0.0.0.0", which needs [http] token.
EXPOSE 8765

# `docker stop` sends SIGTERM to the program itself (the start step execs it):
# it shuts down in reverse start order and exits 0. Allow it the time
# (`docker stop -t 30`, or compose's stop_grace_period).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/wanderer-realtime/bin/python", "/opt/wanderer-realtime/bin/healthcheck.py"]
ENTRYPOINT ["/opt/wanderer-realtime/bin/recipe.sh"]
CMD ["start"]
