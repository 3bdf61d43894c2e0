# The SPMA worker image: `docker build -t spma:0.1.0 .`; the same image runs every `spma` sub-command.
# The base image is pinned to a Python release, the Python packages to constraints.txt (`make
# constraints` writes it from the .venv the tests passed with), so a rebuild installs the same bits.
FROM python:3.11.13-slim-bookworm AS build
WORKDIR /src
COPY constraints.txt pyproject.toml README.md ./
COPY engine engine
COPY streams streams
COPY infra infra
COPY schemas schemas
# PIP_CONSTRAINT rather than `-c`: pip passes the environment on to the isolated build of the
# project, so setuptools and wheel are pinned there too, not only the runtime dependencies.
RUN PIP_CONSTRAINT=/src/constraints.txt pip install --no-cache-dir --prefix=/install .

FROM python:3.11.13-slim-bookworm
RUN useradd --create-home --uid 10001 spma
COPY --from=build /install /usr/local
USER spma
WORKDIR /home/spma
ENV SPMA_DATA_DIR=/home/spma/data \
    SPMA_WEB_HOST=0.0.0.0 \
    SPMA_STORE_URL=rocksdb://
EXPOSE 6066
# Liveness, not readiness: /health answers while the process and its event loop do. /ready turns
# 503 whenever the broker is away or the group rebalances, and an orchestrator that replaces
# unhealthy containers (Swarm does) would then restart healthy workers, adding rebalances to an
# outage. docker-compose.yml, where health only gates and reports, checks /ready instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "infra.probe", "/health"]
ENTRYPOINT ["spma"]
CMD ["worker"]
