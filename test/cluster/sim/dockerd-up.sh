#!/bin/bash
# A private dockerd (with its own containerd) inside netns ${NETNS_PREFIX}i.
# `ip netns exec` would remount /sys and hide the cgroup hierarchies, so the
# netns is entered with nsenter plus a private mount namespace that re-binds
# them. /run/docker/plugins, /run/containerd and /etc/docker are private per
# host (plugin sockets, shim sockets, engine id). Swarm tasks use the loaded
# test image as it is (DOCKER_SERVICE_PREFER_OFFLINE_IMAGE): no registry is asked.
set -euo pipefail
. "$(dirname "$0")/env.sh"
i=$1; D=$(hostdir "$i")
mkdir -p "$D/cg" "$D/etc-docker" "$D/data" "$D/exec" "$D/plugins" "$D/state" "$D/cni-state" "$D/cni-conf" "$D/cni-bin" "$D/run"
[ -f "$D/daemon.json" ] || echo '{}' > "$D/daemon.json"
nsenter --net="/run/netns/$NETNS_PREFIX$i" unshare -m -u --propagation slave -- sh -c "
  set -e
  mount --rbind /sys/fs/cgroup $D/cg
  umount -l /sys && mount -t sysfs sysfs /sys
  mount --rbind $D/cg /sys/fs/cgroup && umount -l $D/cg
  mkdir -p /run/docker/plugins /run/containerd
  mount --bind $D/plugins /run/docker/plugins
  mount -t tmpfs -o mode=700 dcnictrd /run/containerd
  mount --bind $D/etc-docker /etc/docker
  hostname host$i
  exec env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 dockerd --config-file $D/daemon.json --data-root $D/data --exec-root $D/exec \
     --pidfile $D/docker.pid -H unix://$D/docker.sock --cgroup-parent /dcnic-host$i \
     --bip 172.31.$i.1/24 --iptables=true
" > "$D/dockerd.log" 2>&1 &
for _ in $(seq 1 150); do
  dk "$i" version >/dev/null 2>&1 && { echo "host$i dockerd up pid $(cat "$D/docker.pid")"; exit 0; }
  sleep 0.2
done
echo "host$i dockerd FAILED"; tail -20 "$D/dockerd.log"; exit 1
