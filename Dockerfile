# One image for the operator (the default command) and the jobs its CronJobs run (their entry points are on
# PATH: a CronJob sets `command:`). Build: docker build -t agent-memory-operator:0.1.0 .
# Entry points installed: agent-memory-operator (default), agent-memory-sandbox (local demo only), and the
# job entry points as they are added to [project.scripts] in pyproject.toml.

# --- build: a virtualenv with the project and its dependencies (pure Python; all dependencies ship wheels) ---
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall --yes pip \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: slim base + the venv + a non-root user; no compiler or build tools (pip removed from the venv) ---
FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin operator
USER 10001:10001
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# 8080: kopf's liveness endpoint (/healthz); 9090: Prometheus metrics (/metrics).
EXPOSE 8080 9090
ENTRYPOINT ["agent-memory-operator"]
CMD ["--liveness=http://0.0.0.0:8080/healthz", "--metrics-address=0.0.0.0:9090"]
