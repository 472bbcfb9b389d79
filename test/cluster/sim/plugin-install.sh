#!/bin/bash
# Installs the managed plugin on host i from a plugin dir (plugin/build --out DIR),
# with every mount pointed at that host's own dirs, and enables it.
# usage: plugin-install.sh i PLUGIN_DIR NAME [KEY=VALUE ...]   (extra plugin settings)
set -euo pipefail
. "$(dirname "$0")/env.sh"
i=$1; dir=$2; name=$3; shift 3
D=$(hostdir "$i")
etcd=""; for j in 1 2 3; do etcd="$etcd${etcd:+,}http://$UNDERLAY_NET.$j:2379"; done
dk "$i" plugin create "$name" "$dir" >/dev/null
dk "$i" plugin set "$name" \
  state.source="$D/state" cni-state.source="$D/cni-state" cni-conf.source="$D/cni-conf" cni-bin.source="$D/cni-bin" \
  docker-run.source="$D/exec" host-run.source="$D" DOCKER_SOCKET=/host/run/docker.sock \
  DOCKER_CNI_CLUSTER_ETCD="$etcd" DOCKER_CNI_CLUSTER_UNDERLAY_IF=eth0 DOCKER_CNI_CLUSTER_HOST_ID="host$i" \
  LOG_LEVEL=debug "$@"
dk "$i" plugin enable "$name"
