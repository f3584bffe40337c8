# syntax=docker/dockerfile:1
# The octoroute container image. Build from the repository root:
#
#   docker build -t octoroute:local .
#   docker run --rm -p 8080:8080 -v "$PWD/config.toml:/etc/octoroute/config.toml:ro" octoroute:local
#
# docs/deployment.md explains the configuration mount, secrets, and the compose example.
#
# Stage "build" makes the wheel and installs it, with every dependency pinned by constraints.txt,
# into a virtual environment at /opt/octoroute. The final stage copies only that environment onto
# a clean image of the same Python, so no build tool, compiler or source tree ships.
# Both stages must use the same image: the venv's python is a symlink to the image's interpreter.
# For reproducible rebuilds pin it by digest: --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# Optional extras, e.g. --build-arg EXTRAS=otel for OpenTelemetry tracing (docs/operations.md).
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps everything else out of the context).
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/octoroute \
 && /opt/octoroute/bin/python -m pip install --no-cache-dir -c constraints.txt \
      "$(echo /wheels/octoroute-*.whl)${EXTRAS:+[$EXTRAS]}" \
 && /opt/octoroute/bin/octoroute --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="octoroute" \
      org.opencontainers.image.description="OpenAI-compatible router for a self-hosted fleet of LLM servers" \
      org.opencontainers.image.licenses="MIT"
# A fixed numeric uid/gid, so "runAsNonRoot" checks and host file permissions can rely on it.
RUN groupadd --system --gid 10001 octoroute \
 && useradd --system --uid 10001 --gid octoroute --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin octoroute
COPY --from=build /opt/octoroute /opt/octoroute
# Bytecode was compiled at install time; the image can run with a read-only root filesystem.
ENV PATH="/opt/octoroute/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# octoroute drains in-flight requests for up to 30 s on SIGTERM: stop with a grace period above
# that (docker stop -t 40, compose stop_grace_period: 40s); Docker's default is 10 s.
STOPSIGNAL SIGTERM
# slim has no curl; urlopen raises (exit 1) on a refused connection, a timeout or a non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
# Mount the configuration at /etc/octoroute/config.toml (read-only). Host and port are fixed here
# so EXPOSE and HEALTHCHECK stay true whatever [server] says in the file.
CMD ["octoroute", "serve", "--config", "/etc/octoroute/config.toml", "--host", "0.0.0.0", "--port", "8080"]
