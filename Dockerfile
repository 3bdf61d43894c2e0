# The SPMA worker image: `docker build -t spma .`; the same image runs every `spma` sub-command.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY engine engine
COPY streams streams
COPY infra infra
COPY schemas schemas
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 spma
COPY --from=build /install /usr/local
USER spma
WORKDIR /home/spma
ENV SPMA_DATA_DIR=/home/spma/data \
    SPMA_WEB_HOST=0.0.0.0 \
    SPMA_STORE_URL=rocksdb://
EXPOSE 6066
ENTRYPOINT ["spma"]
CMD ["worker"]
