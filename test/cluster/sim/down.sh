#!/bin/bash
# Stops everything the simulation started (by PID only) and removes its netns,
# links, iptables rule and files. Safe to run twice, or after a failed start.
. "$(dirname "$0")/env.sh"
[ -d "$SIM" ] || exit 0
for D in "$SIM"/host*/; do
  [ -d "$D" ] || continue
  D=${D%/}; i=${D##*host}
  if [ -f "$D/docker.pid" ] && kill -0 "$(cat "$D/docker.pid")" 2>/dev/null; then
    P=$(cat "$D/docker.pid")
    CP=$(pgrep -P "$P" -x containerd)
    ids=$(dk "$i" ps -aq 2>/dev/null); [ -n "$ids" ] && dk "$i" rm -f $ids >/dev/null 2>&1
    for svc in $(dk "$i" service ls -q 2>/dev/null); do dk "$i" service rm "$svc" >/dev/null 2>&1; done
    for p in $(dk "$i" plugin ls -q 2>/dev/null); do dk "$i" plugin rm -f "$p" >/dev/null 2>&1; done
    dk "$i" swarm leave --force >/dev/null 2>&1
    kill -TERM "$P"
    for _ in $(seq 1 100); do kill -0 "$P" 2>/dev/null || break; sleep 0.2; done
    [ -n "$CP" ] && for _ in $(seq 1 50); do kill -0 "$CP" 2>/dev/null || break; sleep 0.2; done
  fi
  for s in $(pgrep -f "containerd-shim-runc-v2 .*-address $D/exec/"); do kill "$s"; done
  for c in /sys/fs/cgroup/dcnic-host"$i" /sys/fs/cgroup/*/dcnic-host"$i"; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
done
pids=""
for f in "$SIM"/etcd/e*.pid; do [ -f "$f" ] && { p=$(cat "$f"); kill "$p" 2>/dev/null; pids="$pids $p"; rm -f "$f"; }; done
for p in $pids; do for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done; done
for l in $(ip -br link | awk -v p="$VETH_PREFIX" '$1 ~ "^"p"[0-9]+@" {sub(/@.*/,"",$1); print $1}'); do ip link del "$l"; done
for n in $(ip netns list | awk -v p="$NETNS_PREFIX" '$1 ~ "^"p"[0-9]+$" {print $1}'); do ip netns del "$n"; done
ip link del "$UNDERLAY_BR" 2>/dev/null
while iptables -D FORWARD -i "$UNDERLAY_BR" -o "$UNDERLAY_BR" -m comment --comment "$FWD_COMMENT" -j ACCEPT 2>/dev/null; do :; done
# Mount namespaces die with their last process; nothing of theirs is left on the host.
rm -rf "$SIM"
echo "left: $(ip netns list | grep -c "^$NETNS_PREFIX") netns, $(ip -br link | grep -c -E "$UNDERLAY_BR|$VETH_PREFIX") links"
