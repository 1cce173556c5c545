# Multi-stage build: the same `cargo build --release --locked --bin authbridge` as .ci/run.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migrations migrations
COPY src src
COPY config config
COPY templates templates
COPY benches benches
RUN cargo build --release --locked --bin authbridge

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/authbridge authbridge \
 && mkdir -p /var/lib/authbridge \
 && chown authbridge:authbridge /var/lib/authbridge
COPY --from=build /src/target/release/authbridge /usr/local/bin/authbridge
COPY config/default.toml /etc/authbridge/default.toml

# Configuration comes from AUTHBRIDGE_* variables (see config/default.toml). At least:
#   AUTHBRIDGE_SERVER__ISSUER=https://auth.example.com
#   AUTHBRIDGE_ENCRYPTION__KEY=<32 bytes, base64>   (or AUTHBRIDGE_ENCRYPTION__KEY_FILE)
#   AUTHBRIDGE_UPSTREAM__PROVIDER=ownerrez and its client id and secret
ENV AUTHBRIDGE_DATA_DIR=/var/lib/authbridge \
    AUTHBRIDGE_SERVER__LISTEN=0.0.0.0:8080 \
    AUTHBRIDGE_LOG__FORMAT=json
USER authbridge
VOLUME /var/lib/authbridge
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s CMD ["authbridge", "healthcheck"]
ENTRYPOINT ["authbridge"]
CMD ["serve"]
