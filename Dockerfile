# syntax=docker/dockerfile:1
# Slipway's image: the web server (gunicorn), Celery worker and beat, and the migrate Job, as deploy/ runs them.
# Not built in CI: no container engine or base image can be reached there (tests/deploy parses it instead).
# The base is pinned to the exact Python release the test suite runs on.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
# Test and lint tools stay out of the image; everything else is built as wheels and installed into one venv.
RUN grep -viE '^(pytest|pytest-django|factory-boy|schemathesis|playwright|kubernetes-validate|ruff|dockerfile-parse)==' \
        requirements.txt > runtime-requirements.txt \
    && pip wheel --wheel-dir /wheels -r runtime-requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links /wheels -r runtime-requirements.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SLIPWAY_VAR_DIR=/tmp/slipway \
    STATIC_ROOT=/app/static
RUN groupadd --gid 10001 slipway \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin slipway
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY . .
# Static files are collected at build time and served by WhiteNoise; the key only satisfies the settings here.
RUN DEBUG=1 SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && python -m compileall -q /app \
    && rm -rf /tmp/slipway
# The code is root's and read-only to the process; it writes only to /tmp and its volumes (deploy/base).
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "paas_site.wsgi:application", "--bind=0.0.0.0:8000", "--worker-tmp-dir=/tmp", "--timeout=60", "--graceful-timeout=30", "--forwarded-allow-ips=*", "--access-logfile=-"]
