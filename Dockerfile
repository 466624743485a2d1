# The one fedbackup image: the operator, the node agent and the CLI (`fedbackup <command>`).
#
#   docker build -t ghcr.io/fedbackup/fedbackup:0.1.0 \
#     --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
#
# Three stages on the same Node 24 LTS base, pinned by its full tag (test/unit/packaging/dockerfile.test.ts
# checks this file): `build` compiles src/ with the dev dependencies, `deps` installs the production
# dependencies only, and the final stage copies nothing else than their two outputs and package.json (which
# says the output is ES modules). The final stage runs as an unprivileged user and writes nowhere in the
# image, so it works with a read-only root filesystem (the chart sets readOnlyRootFilesystem). The agent
# Jobs run the same image as root (see "Pod security" in the README); that is set in their pod spec.

FROM node:24.21.0-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

FROM node:24.21.0-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="fedbackup" \
      org.opencontainers.image.description="Back up and restore KubeVirt VMs on a shared volume, node by node, with checksums: operator, node agent and CLI" \
      org.opencontainers.image.source="https://github.com/fedbackup/fedbackup" \
      org.opencontainers.image.url="https://github.com/fedbackup/fedbackup" \
      org.opencontainers.image.documentation="https://github.com/fedbackup/fedbackup#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="fedbackup" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/node:24.21.0-bookworm-slim"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY package.json ./
# 65532: the conventional "nonroot" user of distroless images; no home directory or shell is needed.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
