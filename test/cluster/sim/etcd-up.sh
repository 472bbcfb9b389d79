#!/bin/bash
# A 3-member etcd, member i in netns ${NETNS_PREFIX}i on the underlay (args: host numbers).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cl=""; for i in "$@"; do cl="$cl${cl:+,}e$i=http://$UNDERLAY_NET.$i:2380"; done
mkdir -p "$SIM/etcd"
for i in "$@"; do
  state=new; [ -d "$SIM/etcd/e$i" ] && state=existing
  ip netns exec "$NETNS_PREFIX$i" etcd --name "e$i" --data-dir "$SIM/etcd/e$i" \
    --listen-peer-urls "http://$UNDERLAY_NET.$i:2380" --initial-advertise-peer-urls "http://$UNDERLAY_NET.$i:2380" \
    --listen-client-urls "http://$UNDERLAY_NET.$i:2379" --advertise-client-urls "http://$UNDERLAY_NET.$i:2379" \
    --initial-cluster "$cl" --initial-cluster-token dcnic --initial-cluster-state "$state" \
    --heartbeat-interval 50 --election-timeout 500 \
    >> "$SIM/etcd/e$i.log" 2>&1 &
  echo $! > "$SIM/etcd/e$i.pid"
done
