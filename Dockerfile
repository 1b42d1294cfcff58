# syntax=docker/dockerfile:1
# The clustershift controller image: compiled JavaScript and production dependencies on a
# distroless Node.js 24 base, running as the non-root user 65532.
#
#   docker build -t clustershift:0.1.0 .
#
# Why distroless rather than node:24-bookworm-slim at run time: the controller holds
# credentials for two clusters and writes production traffic weights, so its image carries
# nothing an intruder could use (no shell, no package manager, no coreutils), has fewer
# packages to patch, and starts as non-root by default. The cost is no `kubectl exec` shell
# for debugging; use `kubectl debug` with an ephemeral container instead.

# ---- build: all dependencies, TypeScript compiled to dist/ ---------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
# .dockerignore leaves out src/sandbox (the demo's simulator), as tsconfig.build.json leaves it out of dist/.
COPY src ./src
# build/bundle-client-node.mjs: dist/kube/client-node.js becomes one file holding just the parts
# of @kubernetes/client-node the controller uses (the whole package cost 83 MiB of RSS).
COPY build ./build
RUN npm run build

# ---- production dependencies only (no tsx, typescript, tap, or the `node` binary package) ----
FROM node:24-bookworm-slim AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: no production dependency needs one, and none then runs at build time.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# ---- runtime ------------------------------------------------------------------------------
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
# One malloc arena: glibc gives each thread that allocates (V8's GC and compiler threads, libuv's
# pool) an arena of its own, whose freed memory stays resident. The controller runs JavaScript on
# one thread; bench:scale (1,000 WorkloadMigrations) measured 25 MiB less RSS and no more CPU.
ENV MALLOC_ARENA_MAX=1
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The distroless "nonroot" user; the Helm chart's securityContext expects exactly this uid.
USER 65532:65532
EXPOSE 8080
# Young-generation semi-spaces of 8 MiB: node (no pointer compression) grows them to 64 MiB
# each under a burst, ~100 MiB of RSS that a controller whose garbage dies within a tick never
# needs back (16 MiB held 16 MiB more after a GC at 1,000 WorkloadMigrations, for no less CPU).
# bench:scale runs the controller with the same flag and environment (bench/README.md).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=8", "/app/dist/main.js"]
CMD ["--config", "/etc/clustershift/config.yaml"]
