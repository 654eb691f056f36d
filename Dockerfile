# syntax=docker/dockerfile:1
#
# yaci's image: one static binary on distroless, running as a non-root
# user, with no shell. Build it with
#
#   docker build --build-arg VERSION=v1.2.3 -t yaci .
#
# internal/deploy's tests build the binary with this file's exact go build
# command and environment, so the two cannot drift apart.

# The builder runs on the build machine's platform and cross-compiles,
# which is much faster than emulating the target.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src

# Modules first, so that a change in yaci's code reuses this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/yaci ./cmd/yaci

# distroless/static has CA certificates, /etc/passwd with the nonroot
# user (65532), and nothing else: no shell, no package manager.
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/yaci /yaci
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/yaci"]
CMD ["serve"]
