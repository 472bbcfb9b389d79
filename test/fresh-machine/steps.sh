#!/bin/bash
# Runs inside the chroot of test/fresh-machine/chroot-run (as root, cwd the
# fresh clone). `prereq LINE`: runs the README's prerequisite line.
# `run`: the README's commands, in a network namespace of their own.
set -euo pipefail
cd /root/docker-cni
say() { echo "fresh-machine (chroot): $*" >&2; }

node_ok() {
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 5) ? 0 : 1)'
}

activate() {
  node -e '
    const req = require("http").request({ socketPath: "/run/docker/plugins/cni.sock", path: "/Plugin.Activate", method: "POST" }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => { console.log(body); process.exit(res.statusCode === 200 && body.includes("NetworkDriver") ? 0 : 1); });
    });
    req.on("error", () => process.exit(1));
    req.end();'
}

case ${1:-} in
  prereq)
    export DEBIAN_FRONTEND=noninteractive
    # A reused root may already have ca-certificates: take in carried CAs.
    if command -v update-ca-certificates >/dev/null; then update-ca-certificates >/dev/null; fi
    bash -c "$2"
    say "node $(node --version) at $(command -v node), npm $(npm --version)"
    node_ok || { say "node is older than 20.5"; exit 1; }
    ;;
  run)
    node_ok || { say "node is older than 20.5"; exit 1; }

    # npm ci needs the registry; the server then runs in a network namespace
    # of its own (loopback only), so its staging namespaces, links and
    # iptables chains are not the host's.
    say "npm ci && npm start (npm start in its own network namespace)"
    setsid bash -c 'npm ci && exec unshare --net -- bash -c "ip link set lo up && exec npm start"' >/root/npm-start.log 2>&1 &
    leader=$!
    ready=0
    for _ in $(seq 1 300); do
      if activate >/dev/null 2>&1; then ready=1; break; fi
      kill -0 "$leader" 2>/dev/null || break
      sleep 1
    done
    if [ "$ready" != 1 ]; then
      say "the socket never answered Plugin.Activate"; tail -40 /root/npm-start.log >&2
      kill -TERM -- "-$leader" 2>/dev/null || true
      exit 1
    fi
    say "Plugin.Activate: $(activate)"
    kill -TERM -- "-$leader"
    for _ in $(seq 1 60); do kill -0 "$leader" 2>/dev/null || break; sleep 1; done
    if kill -0 "$leader" 2>/dev/null; then say "npm start did not stop on SIGTERM"; kill -KILL -- "-$leader"; exit 1; fi
    if [ -S /run/docker/plugins/cni.sock ]; then say "socket left behind after SIGTERM"; exit 1; fi
    say "server stopped on SIGTERM; last log lines:"; tail -3 /root/npm-start.log >&2

    say "npm ci && npm run test:unit"
    if ! (npm ci && npm run test:unit) >/root/test-unit.log 2>&1; then
      say "unit tier failed:"; tail -60 /root/test-unit.log >&2; exit 1
    fi
    tail -1 /root/test-unit.log >&2
    ;;
  *) echo "usage: steps.sh prereq LINE | run" >&2; exit 2 ;;
esac
