# syntax=docker/dockerfile:1
# tokengate's container image: a locked release build, then only the binary
# on a minimal non-root runtime (no shell, no package manager).
#
#   docker build -t tokengate:0.1.0 .              # build here, on distroless
#
# Where the binary and the base come from are build arguments; everything
# else (labels, user, entrypoint) is the one `runtime` stage, whichever way
# the image is built:
#
#   BINARY=build     (default) compile in the `build` stage below
#   BINARY=prebuilt  take the file `tokengate` from the build context: a
#                    `cargo build --release --locked` made elsewhere, on a
#                    glibc no newer than the base's
#   BASE=...         the runtime base (default distroless cc, Debian 13);
#                    deploy/image.sh passes a base it assembles from the
#                    host's Debian packages where no registry is reachable
#
# deploy/image.sh builds it with buildah (no Docker daemon) and passes the
# labels' values from Cargo.toml; deploy/README.md, "The image".
#
# Builder and runtime are the same Debian release (trixie = Debian 13), so
# the binary's glibc needs are met. The Rust version is the one CI tests
# with. For releases, pin both images by digest too (FROM image:tag@sha256:...).
ARG BASE=gcr.io/distroless/cc-debian13:nonroot
ARG BINARY=build

FROM rust:1.95-slim-trixie AS build
WORKDIR /src
# The whole workspace (.dockerignore keeps target/, .git/, node_modules/ and
# deploy/ out): build.rs compiles proto/ with protox (no protoc needed), and
# aws-lc-sys needs only the C compiler the rust image has.
COPY . .
# --locked: exactly the dependency versions of Cargo.lock, or fail.
# The cache mounts keep the crate downloads and build between builds
# (BuildKit); the binary is copied out of the cached target folder, without
# the line tables [profile.release] keeps for profiling (same code, a
# quarter of the size; deploy/image.sh does the same for BINARY=prebuilt).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package tokengate --bin tokengate \
    && mkdir -p /out \
    && objcopy --strip-debug target/release/tokengate /out/tokengate

# BINARY=prebuilt: the context holds the binary only (deploy/image.sh makes
# such a context; the repository's .dockerignore keeps target/ out).
FROM scratch AS prebuilt
COPY tokengate /out/tokengate

# The stage named by BINARY; only that one is built.
FROM ${BINARY} AS binary

FROM ${BASE} AS runtime
# The OCI labels; deploy/image.sh passes Cargo.toml's values and the commit.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://example.invalid/tokengate
ARG LICENSES=Apache-2.0
LABEL org.opencontainers.image.title="tokengate" \
      org.opencontainers.image.description="SpaceONE identity v1 Token API over gRPC, gRPC-Web and REST" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# glibc, libgcc and CA certificates (rediss:// to public CAs) come with the
# base; the binary needs nothing else.
COPY --from=binary --chmod=0755 /out/tokengate /usr/local/bin/tokengate
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
