# syntax=docker/dockerfile:1
# Soundpiece partner endpoint: `soundpiece-partner serve` as a non-root user.
# Build:  docker build -t soundpiece-partner .
# Run:    docker run -p 8000:8000 -e SOUNDPIECE_SECRET_KEY=... -e SOUNDPIECE_DATABASE_URL=... soundpiece-partner
# SOUNDPIECE_SECRET_KEY is required: without it the service refuses to start (SOUNDPIECE_ALLOW_KEY_FILE=false),
# rather than keep a generated key on the same /data volume as the secrets it encrypts.
# `serve` bounds every connection itself (head size, header count, time, connections: README,
# "Limits on each connection"), so port 8000 can face clients directly. /metrics: set
# SOUNDPIECE_METRICS_TOKEN, or SOUNDPIECE_METRICS_PORT (e.g. 9100) and publish only 8000; with
# neither it is not served. `serve` listens on loopback unless told otherwise: CMD says 0.0.0.0.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rules ./rules
COPY scanner ./scanner
COPY partner_endpoint ./partner_endpoint
# DL3013: this installs the local project; its dependency ranges live in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install '.[endpoint]'

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 soundpiece \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /data soundpiece
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SOUNDPIECE_DATA_DIR=/data \
    SOUNDPIECE_ALLOW_KEY_FILE=false
USER 10001:10001
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["soundpiece-partner", "serve", "--host", "0.0.0.0", "--port", "8000"]
