# Image whose filesystem becomes the managed plugin's rootfs (see plugin/build).
#
# Real world:  docker build -t docker-cni:rootfs .
# Offline:     plugin/base-image && plugin/build --base docker-cni/base:bookworm
#   which passes BASE=docker-cni/base:bookworm (node + the Debian packages
#   already inside), INSTALL_PACKAGES=0 and NPM_DEPS=context (node_modules from
#   the build context instead of `npm ci`).
# Needs BuildKit (the default since Docker 23; DOCKER_BUILDKIT=1 before) so that
# only the selected deps-* stage is built.

ARG BASE=node:20-bookworm-slim
# registry: `npm ci` inside the build; context: reuse ./node_modules as is.
ARG NPM_DEPS=registry

FROM ${BASE} AS deps-registry
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM ${BASE} AS deps-context
WORKDIR /src
COPY package.json package-lock.json ./
COPY node_modules ./node_modules

FROM deps-${NPM_DEPS} AS build
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund --offline

FROM ${BASE}
# 1: apt-get the runtime tools; 0: the base already has them (offline base).
ARG INSTALL_PACKAGES=1
RUN if [ "$INSTALL_PACKAGES" = 1 ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends iproute2 iptables containernetworking-plugins mount \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# Mount points of the host dirs the entrypoint mounts (see plugin/entrypoint).
RUN mkdir -p /etc/cni/net.d /opt/cni/bin /var/lib/cni /var/lib/docker-cni
WORKDIR /opt/docker-cni
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY plugin/entrypoint /usr/local/bin/docker-cni-entrypoint
ENV NODE_ENV=production
ENTRYPOINT ["/usr/local/bin/docker-cni-entrypoint"]
CMD ["serve"]
