# One image for the operator (the default command) and the jobs its CronJobs run (`memory-jobs`, on PATH: a CronJob
# sets `command:`). It carries two distributions of this repository, the agent library (client/, which the jobs
# use) and the operator; the sandbox (development tooling) is not in it. Build: docker build -t agent-memory-operator:0.1.0 .

# --- build: a virtualenv with both distributions, every dependency pinned by constraints/operator.txt -----------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY constraints/operator.txt ./constraints/operator.txt
COPY client ./client
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --constraint constraints/operator.txt ./client . \
 && /opt/venv/bin/pip uninstall --yes pip \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: slim base + the venv + a non-root user; no compiler or build tools (pip removed from the venv) ---
FROM python:3.11-slim
LABEL org.opencontainers.image.title="agent-memory-operator" \
      org.opencontainers.image.description="Kubernetes operator giving each LLM-agent tenant an isolated, encrypted, audited memory namespace on Redis/Valkey" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/venv /opt/venv
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin operator
USER 10001:10001
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# 8080: kopf's liveness endpoint (/healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["agent-memory-operator"]
CMD ["--liveness=http://0.0.0.0:8080/healthz", "--metrics-address=0.0.0.0:9090"]
