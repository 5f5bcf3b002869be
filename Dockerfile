# syntax=docker/dockerfile:1
# Agent Mesh: one image for every process (`mesh producer | worker | dev | loadgen | bench`).
#
#   docker build -t agentmesh/mesh .
#   docker run --rm agentmesh/mesh --help
#
# Stages: web (the dashboard, when web/package.json exists) → build (the static
# Go binary, with web/dist beside the sources in case the producer embeds it) →
# runtime (alpine: small, and its busybox wget serves the compose healthchecks).

ARG GO_VERSION=1.26
ARG NODE_VERSION=20
ARG ALPINE_VERSION=3.22

FROM node:${NODE_VERSION}-bookworm-slim AS web
WORKDIR /src/web
# "web*" instead of "web/": a checkout without the web/ directory still builds
# (BuildKit allows a wildcard that matches nothing). A directory matched by a
# wildcard has its contents copied, so this lands web/* in /src/web.
COPY web* ./
RUN --mount=type=cache,target=/root/.npm \
    if [ -f package.json ]; then \
      npm ci --no-audit --no-fund && npm run build; \
    else \
      echo "no web/package.json: building without the dashboard"; \
    fi; \
    mkdir -p dist

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
COPY --from=web /src/web/dist ./web/dist
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/mesh ./cmd/mesh

FROM alpine:${ALPINE_VERSION}
RUN apk add --no-cache ca-certificates tzdata \
 && adduser -D -H -u 10001 mesh
WORKDIR /app
COPY --from=build /out/mesh /usr/local/bin/mesh
# The producer serves the built dashboard from web/dist (relative to /app).
COPY --from=web /src/web/dist /app/web/dist
USER mesh
# Producer HTTP (API, /ws, /metrics, the dashboard), worker metrics, loadgen metrics.
EXPOSE 8080 9091 9092
ENTRYPOINT ["mesh"]
CMD ["--help"]
