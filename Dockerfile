# syntax=docker/dockerfile:1
# tokengate's container image: a locked release build, then only the binary
# on a minimal non-root runtime (no shell, no package manager).
#
#   docker build -t tokengate:0.1.0 .
#
# Builder and runtime are the same Debian release (trixie = Debian 13), so
# the binary's glibc needs are met. The Rust version is the one CI tests
# with. For releases, pin both images by digest too (FROM image:tag@sha256:...).
FROM rust:1.95-slim-trixie AS build
WORKDIR /src
# The whole workspace (.dockerignore keeps target/, .git/, node_modules/ and
# deploy/ out): build.rs compiles proto/ with protox (no protoc needed), and
# aws-lc-sys needs only the C compiler the rust image has.
COPY . .
# --locked: exactly the dependency versions of Cargo.lock, or fail.
# The cache mounts keep the crate downloads and build between builds
# (BuildKit); the binary is copied out of the cached target folder.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package tokengate --bin tokengate \
    && install -D -m 0755 target/release/tokengate /out/tokengate

FROM gcr.io/distroless/cc-debian13:nonroot
# glibc, libgcc and CA certificates (rediss:// to public CAs) come with the
# distroless "cc" image; the binary needs nothing else.
COPY --from=build /out/tokengate /usr/local/bin/tokengate
# distroless's "nonroot" user; the Kubernetes manifests run as the same uid.
USER 65532:65532
# The one port: native gRPC, gRPC-Web and REST, /healthz, /readyz, /metrics.
EXPOSE 50051
# No HEALTHCHECK: the image has no shell or HTTP client to run one, and
# Kubernetes ignores it anyway (the Deployment's probes call /healthz and
# /readyz).
ENTRYPOINT ["/usr/local/bin/tokengate"]
# The config comes from TOKENGATE_CONFIG (the Deployment sets it). Without
# one, `serve` starts dev mode: see deploy/README.md, "The image".
CMD ["serve"]
