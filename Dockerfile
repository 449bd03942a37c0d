# Multi-stage: wheels are built in the first stage; the runtime image has no compiler, runs as a
# non-root user and carries the collected static files. Secrets come from the environment at run
# time (docker-compose.yml, .env); the only key below is a throwaway used for collectstatic.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt

FROM python:3.11.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DEBUG=0 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels /wheels/* && rm -rf /wheels
COPY . .
RUN SECRET_KEY=build-only-not-secret-0123456789abcdefghijkl DEBUG=1 python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home /app portal \
    && mkdir -p /app/var && chown -R portal /app/var
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --retries=10 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
