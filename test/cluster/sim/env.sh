# Shared names of the simulated cluster, sourced by every script here.
# Everything the simulation creates carries the "dcnic" prefix and lives under $SIM.
SIM=${DCNIC_SIM_DIR:-/tmp/dcnic-sim}
UNDERLAY_BR=dcnicul0
UNDERLAY_NET=10.250.0          # .i is host i; checked against host routes by up.sh
NETNS_PREFIX=dcnic-h
VETH_PREFIX=dcnicv
FWD_COMMENT=dcnic-underlay
DOCKER_BIN=${DOCKER_BIN:-/usr/bin/docker}
hostdir() { echo "$SIM/host$1"; }
dk() { local i=$1; shift; "$DOCKER_BIN" -H "unix://$(hostdir "$i")/docker.sock" "$@"; }
