# The serving image: onnxruntime only, no torch.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    FRESHCLAIM_HOME=/var/lib/freshclaim FRESHCLAIM_MODEL_DIR=/app/models
RUN useradd --system --create-home --home-dir /var/lib/freshclaim freshclaim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY claims_api ./claims_api
COPY data ./data
COPY training/__init__.py ./training/__init__.py
COPY models ./models
RUN pip install --no-compile ".[s3]"
USER freshclaim
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# Run `freshclaim migrate` once per release (a job or init container), then start replicas.
# Scale-out: replicas with FRESHCLAIM_BACKGROUND_WORKERS=false, plus one or more containers of
# this image running `freshclaim worker` (outbox relay and lease sweeper).
CMD ["freshclaim", "serve", "--host", "0.0.0.0", "--port", "8000"]
