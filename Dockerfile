# One image for every role: ingress, consumers and workers differ only in the command.
FROM python:3.11-slim AS base
# Outside the local stack the image is production unless told otherwise (fail-closed defaults).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 ENVIRONMENT=production
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingress ingress
COPY consumers consumers
COPY workers workers
COPY schemas schemas
COPY infra infra
RUN pip install . && useradd --system --uid 10001 governance
USER governance
EXPOSE 8000
CMD ["python", "-m", "ingress"]
