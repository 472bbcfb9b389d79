#!/bin/bash
# The underlay: bridge $UNDERLAY_BR in the root netns, and netns ${NETNS_PREFIX}1..N
# each with eth0 = $UNDERLAY_NET.i/24 on it. The root netns FORWARD policy is
# DROP (dockerd) and br_netfilter applies it to bridged frames, hence the rule.
set -euo pipefail
. "$(dirname "$0")/env.sh"
n=${1:-3}
if ip route | grep -q "^$UNDERLAY_NET\."; then echo "underlay $UNDERLAY_NET.0/24 overlaps a host route" >&2; exit 1; fi
ip link add "$UNDERLAY_BR" type bridge
ip link set "$UNDERLAY_BR" up
iptables -I FORWARD 1 -i "$UNDERLAY_BR" -o "$UNDERLAY_BR" -m comment --comment "$FWD_COMMENT" -j ACCEPT
for i in $(seq 1 "$n"); do
  ip netns add "$NETNS_PREFIX$i"
  ip link add "$VETH_PREFIX$i" type veth peer name eth0 netns "$NETNS_PREFIX$i"
  ip link set "$VETH_PREFIX$i" master "$UNDERLAY_BR" up
  ip -n "$NETNS_PREFIX$i" addr add "$UNDERLAY_NET.$i/24" dev eth0
  ip -n "$NETNS_PREFIX$i" link set eth0 up
  ip -n "$NETNS_PREFIX$i" link set lo up
done
