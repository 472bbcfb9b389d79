/**
 * A minimal IpamPluginRunner that execs the real host-local binary, so the
 * IPAM driver can be tested against it without the full CNI runtime.
 */
import { execa } from 'execa';
import type { CniErrorBody, CniResult, RuntimeConf } from '../../../src/cni/types.js';
import { CniPluginError, PluginError } from '../../../src/errors.js';
import type { IpamNetConf, IpamPluginRunner } from '../../../src/ipam/ipam-driver.js';

/** DOCKER_CNI_TEST_CNI_PATH (set by test/run.mjs) selects another plugin set. */
export const HOST_LOCAL_DIR = process.env.DOCKER_CNI_TEST_CNI_PATH?.split(':')[0] || '/usr/lib/cni';
export const HOST_LOCAL_BIN = `${HOST_LOCAL_DIR}/host-local`;

export class HostLocalRunner implements IpamPluginRunner {
  calls = 0;

  constructor(private readonly binary = HOST_LOCAL_BIN) {}

  async execIpam(verb: 'ADD' | 'DEL', netconf: IpamNetConf, rt: RuntimeConf): Promise<CniResult | undefined> {
    this.calls++;
    const proc = await execa(this.binary, [], {
      input: JSON.stringify(netconf),
      env: {
        CNI_COMMAND: verb,
        CNI_CONTAINERID: rt.containerId,
        CNI_NETNS: rt.netns,
        CNI_IFNAME: rt.ifName,
        CNI_ARGS: (rt.args ?? []).map(([k, v]) => `${k}=${v}`).join(';'),
        CNI_PATH: HOST_LOCAL_DIR,
      },
      extendEnv: false,
      reject: false,
      timeout: 20_000,
    });
    if (proc.exitCode !== 0) {
      const body = parseErrorBody(proc.stdout) ?? parseErrorBody(proc.stderr);
      if (body) throw new CniPluginError('host-local', verb, body.code, body.msg, body.details);
      throw new PluginError('CNI_FAILED', `host-local failed (${verb}): exit ${proc.exitCode}: ${proc.stderr || proc.stdout}`);
    }
    if (verb === 'DEL' || proc.stdout.trim() === '') return undefined;
    return JSON.parse(proc.stdout) as CniResult;
  }
}

function parseErrorBody(text: string): CniErrorBody | undefined {
  try {
    const body = JSON.parse(text) as Partial<CniErrorBody>;
    return typeof body.code === 'number' && typeof body.msg === 'string' ? (body as CniErrorBody) : undefined;
  } catch {
    return undefined;
  }
}
