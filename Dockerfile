# syntax=docker/dockerfile:1
#
# scimd container image. `docker build -t scimd .` / `docker compose up` (see docker-compose.yml).
# scripts/docker-check.sh lints this file and runs its commands outside Docker in CI (no Docker
# engine there): keep the build RUN line, ENV, ENTRYPOINT/CMD and HEALTHCHECK parseable by it.

# ---- build: the same `cargo build --release --locked` that CI runs ----------------------------
# Bookworm on both sides, so the binary links against the runtime image's glibc.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo ./.cargo
COPY src ./src
COPY migrations ./migrations
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git/db \
    cargo build --release --locked \
    && strip target/release/scimd

# ---- runtime: the binary and nothing else, as a non-root user ---------------------------------
# No ca-certificates: the one outbound client (SCIM event push) carries its own root
# certificates (webpki-roots). SQLite is compiled in.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 scimd \
    && useradd --system --uid 10001 --gid scimd --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin scimd \
    && mkdir -p /data \
    && chown scimd:scimd /data
COPY --from=build /src/target/release/scimd /usr/local/bin/scimd
USER 10001:10001
WORKDIR /data
# SQLite database when no DATABASE_URL is given; mount a volume here to keep it.
VOLUME ["/data"]
ENV SCIMD_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/scimd.db \
    SCIMD_LOG_FORMAT=json
EXPOSE 8080
# `scimd healthcheck` GETs /healthz on SCIMD_LISTEN (0.0.0.0 → 127.0.0.1); no curl in the image.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["scimd", "healthcheck"]
# scimd runs as PID 1 and drains in-flight requests on SIGTERM (`docker stop`).
ENTRYPOINT ["scimd"]
CMD ["serve"]
