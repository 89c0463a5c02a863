# syntax=docker/dockerfile:1
# The jetflow image: one static binary (CGO off, -trimpath) on distroless
# static (CA certificates, tzdata, no shell), run as a non-root user, with
# jetflow as the entrypoint:
#
#   docker build -t jetflow .
#   docker run --rm jetflow --help
#   docker run --rm -p 8080:8080 jetflow dev --http 0.0.0.0:8080
#   docker run --rm jetflow worker --nats nats://nats:4222 --metrics :9464
#
# deploy/compose and deploy/k8s run it as `jetflow init`, `server` and
# `worker`; deploy/check (TestDockerfile) checks this file.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# The module cache first: it changes less often than the sources.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags='-s -w' -o /out/jetflow ./cmd/jetflow \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jetflow /jetflow
# The working directory holds `jetflow dev`'s ./.jetflow: writable by the
# user below (mount a volume there to keep it).
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
# distroless's "nonroot" user, by number so that Kubernetes's runAsNonRoot
# can check it without reading /etc/passwd.
USER 65532:65532
# The HTTP API (jetflow server, jetflow dev) and a worker's --metrics :9464.
EXPOSE 8080 9464
ENTRYPOINT ["/jetflow"]
CMD ["--help"]
