# One image for every process of gameplay-analytics; the command picks the role:
#   docker run IMAGE operator | gateway | aggregator
# Two stages: the builder makes the wheel and a virtualenv with the runtime dependencies
# (no extras); the final stage gets only that virtualenv and the event schemas.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Compilers stay in this stage, for any dependency that ships no wheel for the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gameplay_analytics ./gameplay_analytics
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install /dist/*.whl \
 && /opt/venv/bin/gameplay-analytics --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="gameplay-analytics" \
      org.opencontainers.image.description="Gameplay analytics: operator, gateway and aggregator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GAMEPLAY_ANALYTICS_SCHEMAS_DIR=/opt/gameplay-analytics/schemas
# A fixed numeric uid, so that Kubernetes can check runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 10001 analytics \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin analytics
COPY --from=builder /opt/venv /opt/venv
COPY schemas/ /opt/gameplay-analytics/schemas/
USER 10001:10001
WORKDIR /tmp
# gateway WebSocket, liveness (/healthz), metrics
EXPOSE 8765 8080 9102
ENTRYPOINT ["gameplay-analytics"]
CMD ["--help"]
