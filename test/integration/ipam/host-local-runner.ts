/**
 * Runs the real host-local binary through the project's plugin executor
 * (environment, error decoding and timeouts as in production), as another
 * CNI tool sharing docker-cni's pool directories would, so the IPAM driver's
 * in-process reservations can be checked against it.
 */
import { SpawnPluginExecutor, type PluginExecutor } from '../../../src/cni/exec.js';
import type { CniResult, RuntimeConf } from '../../../src/cni/types.js';
import { join } from 'node:path';
import { IpamDriver } from '../../../src/ipam/ipam-driver.js';
import type { PoolRecord } from '../../../src/ipam/pool-record.js';
import { silentLogger } from '../../../src/log.js';
import { RecordStore } from '../../../src/state/record-store.js';

/** DOCKER_CNI_TEST_CNI_PATH (set by test/run.mjs) selects another plugin set. */
export const HOST_LOCAL_DIR = process.env.DOCKER_CNI_TEST_CNI_PATH?.split(':')[0] || '/usr/lib/cni';
export const HOST_LOCAL_BIN = `${HOST_LOCAL_DIR}/host-local`;
const TIMEOUT_MS = 20_000;

/** A standalone IPAM plugin's netconf. */
export type IpamNetConf = Record<string, unknown> & {
  cniVersion: string;
  name: string;
  ipam: { type: string; [key: string]: unknown };
};

export class HostLocalRunner {
  calls = 0;

  constructor(
    private readonly binary = HOST_LOCAL_BIN,
    private readonly executor: PluginExecutor = new SpawnPluginExecutor(),
  ) {}

  async execIpam(verb: 'ADD' | 'DEL', netconf: IpamNetConf, rt: RuntimeConf): Promise<CniResult | undefined> {
    this.calls++;
    // The CNI_* variables of one attachment, as CniRuntime passes them (SPEC "Parameters").
    const env = {
      CNI_COMMAND: verb,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_ARGS: (rt.args ?? []).map(([key, value]) => `${key}=${value}`).join(';'),
      CNI_PATH: HOST_LOCAL_DIR,
      ...(rt.netnsOverride ? { CNI_NETNS_OVERRIDE: '1' } : {}),
    };
    const stdout = (await this.executor.execPlugin(this.binary, Buffer.from(JSON.stringify(netconf)), env, TIMEOUT_MS)).toString();
    if (verb === 'DEL' || stdout.trim() === '') return undefined;
    return JSON.parse(stdout) as CniResult;
  }
}

/** host-local's netconf for a docker-cni pool: the pool ID is the network name. */
export const hostLocalNetconf = (poolId: string, dataDir: string, subnet: string, gateway: string): IpamNetConf => ({
  cniVersion: '1.0.0',
  name: poolId,
  ipam: { type: 'host-local', dataDir, ranges: [[{ subnet, gateway }]] },
});

/** An initialised IpamDriver with its pool records in <root>/state and host-local data in `dataDir`. */
export async function ipamDriverOn(root: string, dataDir = join(root, 'host-local')): Promise<IpamDriver> {
  const driver = new IpamDriver({
    pools: new RecordStore<PoolRecord>(join(root, 'state'), 'pools'),
    hostLocalDataDir: dataDir,
    defaultPoolsV4: ['10.232.0.0/16/24'],
    defaultPoolsV6: ['fd7d:c11d:4e7::/48/64'],
    logger: silentLogger,
  });
  await driver.init();
  return driver;
}
