# backpropd container image.
#   docker build -t backpropd .
#   docker run -e BACKPROPD_ADMIN_KEY=... -p 8080:8080 -v backpropd:/data backpropd
#   docker run --rm -v backpropd:/data backpropd keys create --db /data/backpropd.db --scope admin --name me
# Stage 1 builds build/backpropd with the -dev packages; stage 2 carries only
# the binary and the shared libraries it links, and runs it as a non-root user
# bound to 0.0.0.0:8080 with its database in the /data volume.  A daemon on
# 0.0.0.0 needs an API key: BACKPROPD_ADMIN_KEY (or BACKPROPD_ADMIN_KEY_FILE,
# e.g. a mounted secret) creates that admin key at start-up, or a key made
# with `keys create` on the volume will do; with neither, the container exits
# at once and says so.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libopenblas-dev libjansson-dev libmicrohttpd-dev \
      libsqlite3-dev libsodium-dev zlib1g-dev libcsv-dev libyajl-dev \
      protobuf-c-compiler libprotobuf-c-dev libonnx-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the daemon is built from (openapi.yaml and the dashboard in ui/
# are compiled in; it serves them at /openapi.yaml and /); tests and
# benchmarks stay out of the image.
COPY Makefile openapi.yaml ./
COPY scripts/ scripts/
COPY migrations/ migrations/
COPY core/ core/
COPY server/ server/
COPY ui/ ui/
RUN make -j"$(nproc)" build/backpropd \
 && strip build/backpropd \
 && ./build/backpropd --help >/dev/null

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopenblas0-pthread libjansson4 libmicrohttpd12 libsqlite3-0 libsodium23 zlib1g libcsv3 \
      libyajl2 libprotobuf-c1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 backpropd \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin backpropd \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY --from=build /src/build/backpropd /usr/local/bin/backpropd
# The daemon reads these (a flag on the command line still wins).
ENV BACKPROPD_BIND=0.0.0.0 \
    BACKPROPD_PORT=8080 \
    BACKPROPD_DB=/data/backpropd.db
USER 10001:10001
VOLUME /data
EXPOSE 8080
# bash (essential in every Debian image) speaks HTTP/1.0 over /dev/tcp, so the
# runtime image needs no curl or wget: healthy when /healthz answers 200.
# (No --start-period: the daemon answers within milliseconds of starting, and
# dockerfilelint, which CI can run with LINT=1, rejects that option.)
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${BACKPROPD_PORT:-8080} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# SIGTERM (docker stop) shuts the daemon down cleanly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/backpropd"]
