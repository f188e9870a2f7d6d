# syntax=docker/dockerfile:1
# Build: the same `cargo build --release --locked` that CI runs.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked && strip target/release/scimd

# Run: a slim image with only the binary, as a non-root user.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin scimd \
    && mkdir -p /data && chown scimd /data
COPY --from=build /src/target/release/scimd /usr/local/bin/scimd
USER scimd
WORKDIR /data
VOLUME /data
ENV SCIMD_LISTEN=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/scimd.db \
    SCIMD_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["scimd"]
CMD ["serve"]
