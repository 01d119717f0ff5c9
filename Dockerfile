# The serving image: onnxruntime only, no torch. Two stages: the wheels are built in the first,
# and only they reach the slim runtime image (no build caches, no sources beyond the package).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY claims_api ./claims_api
COPY data ./data
COPY training/__init__.py ./training/__init__.py
RUN pip wheel --wheel-dir /wheels ".[s3]"

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FRESHCLAIM_HOME=/var/lib/freshclaim FRESHCLAIM_MODEL_DIR=/app/models
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/freshclaim freshclaim
WORKDIR /app
COPY --from=build /wheels /wheels
# Only the wheels built above, nothing from an index: the runtime installs what was built.
RUN pip install --no-compile --no-index --find-links /wheels "freshclaim[s3]==0.1.0" \
    && rm -rf /wheels
COPY models ./models
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"]
# Run `freshclaim migrate` once per release (a job or init container), then start replicas.
# Scale-out: replicas with FRESHCLAIM_BACKGROUND_WORKERS=false, plus one or more containers of
# this image running `freshclaim worker` (outbox relay, webhook dispatcher, lease sweeper).
CMD ["freshclaim", "serve", "--host", "0.0.0.0", "--port", "8000"]
