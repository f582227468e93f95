# Genesis container image. Runs the TypeScript sources directly on Node 24 (type stripping: no build step).
# The steps mirror .ci/run: production dependencies with `npm ci` (which builds the native addons), iPXE binaries from Debian's ipxe package
# copied with scripts/copy-ipxe.sh; ipmitool for power control of machines with a BMC. It runs as an unprivileged user; the node binary carries
# CAP_NET_BIND_SERVICE so TFTP (69) and the proxyDHCP (67, 4011) can still bind.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
# gcc and libc6-dev build the native addons (native/sendfile.c and native/tftp-pump.c, by npm ci's
# install script: scripts/build-native.sh), against the headers the node image ships; the final
# image has no compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY native ./native
COPY scripts/build-native.sh ./scripts/
RUN npm ci --omit=dev --no-audit --no-fund \
 && test -f build/native/sendfile.node \
 && test -f build/native/tftp-pump.node

FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ipxe ipmitool libcap2-bin \
 && setcap cap_net_bind_service=+ep "$(readlink -f "$(command -v node)")" \
 && apt-get purge -y libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin genesis
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/build ./build
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY assets ./assets
COPY scripts ./scripts
# `genesis` on PATH, whatever the working directory (compose runs it in /config).
RUN sh scripts/copy-ipxe.sh /usr/lib/ipxe assets/ipxe \
 && mkdir -p /data /config assets/talos \
 && chown genesis:genesis /data assets/talos \
 && printf '#!/bin/sh\nexec node /app/bin/genesis.js "$@"\n' > /usr/local/bin/genesis \
 && chmod 755 /usr/local/bin/genesis
# XDG_STATE_HOME: where genesis serve leaves its marker (its pid and ports, src/config/serve-marker.ts),
# which `docker compose exec genesis genesis doctor` needs to name the serve as the holder of its
# ports: node's file capability keeps the serve's /proc entries private even from its own user, and
# the user's home (/app) is not writable. /tmp goes with the container, as the marker should.
ENV GENESIS_DATA_DIR=/data \
    GENESIS_ASSETS_DIR=/app/assets \
    GENESIS_LOG_FORMAT=json \
    XDG_STATE_HOME=/tmp/genesis-state
USER genesis
VOLUME ["/data", "/app/assets/talos"]
EXPOSE 67/udp 69/udp 4011/udp 8080/tcp 8090/tcp 8092/tcp
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.GENESIS_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "--max-semi-space-size=2", "--expose-gc", "/app/bin/genesis.js"]
CMD ["serve"]
