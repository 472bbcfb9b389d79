/** Simulated hosts for the cluster IPAM tests: each an allocator with its own etcd client, lease and local state. */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ClusterIpam } from '../../../src/cluster/cluster-ipam.js';
import { EtcdStore } from '../../../src/cluster/etcd-store.js';
import { HostLease } from '../../../src/cluster/host-lease.js';
import { ClusterKeys } from '../../../src/cluster/keys.js';
import { LocalPoolStore } from '../../../src/cluster/local-state.js';
import { silentLogger } from '../../../src/log.js';

export interface SimHost {
  id: string;
  store: EtcdStore;
  lease: HostLease;
  ipam: ClusterIpam;
  /** The host dies: keepalive stops, the lease is left to expire. */
  crash(): Promise<void>;
}

/** A unique key prefix per test, so tests never see each other's records. */
export const uniquePrefix = (): string => `/dcni-test-${randomBytes(4).toString('hex')}`;

export async function startHost(opts: {
  id: string;
  endpoints: string[];
  prefix: string;
  stateRoot: string;
  blockPrefix?: number;
  ttlSeconds?: number;
  underlayIp?: string;
}): Promise<SimHost> {
  const store = new EtcdStore({ endpoints: opts.endpoints, keys: new ClusterKeys(opts.prefix), callTimeoutMs: 1500 });
  const lease = new HostLease({
    store,
    hostId: opts.id,
    ttlSeconds: opts.ttlSeconds ?? 2,
    logger: silentLogger,
    maxRetryMs: 500,
    ...(opts.underlayIp ? { underlayIp: opts.underlayIp } : {}),
  });
  const ipam = new ClusterIpam({
    store,
    lease,
    local: new LocalPoolStore(join(opts.stateRoot, opts.id)),
    blockPrefixV4: opts.blockPrefix ?? 28,
    logger: silentLogger,
  });
  await ipam.start();
  let crashed = false;
  return {
    id: opts.id,
    store,
    lease,
    ipam,
    async crash() {
      if (crashed) return;
      crashed = true;
      lease.close();
      await store.close();
    },
  };
}

/** Polls `probe` until it returns true; fails after `timeoutMs` (a bound, not a timing assertion). */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
