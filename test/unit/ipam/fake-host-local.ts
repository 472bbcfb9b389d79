/**
 * An in-process stand-in for host-local: same on-disk layout and the same
 * error messages (host-local 1.1.1, code 999), so the driver's file reading
 * and error mapping are exercised without root or the real binary.
 */
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CniResult, RuntimeConf } from '../../../src/cni/types.js';
import { CniPluginError } from '../../../src/errors.js';
import type { IpamNetConf, IpamPluginRunner } from '../../../src/ipam/ipam-driver.js';
import { formatIp, parseCidr, parseIp, usableRange } from '../../../src/util/ip-math.js';

export interface RecordedCall {
  verb: 'ADD' | 'DEL';
  netconf: IpamNetConf;
  rt: RuntimeConf;
}

interface RangeConf {
  subnet: string;
  gateway?: string;
  rangeStart?: string;
  rangeEnd?: string;
}

export class FakeHostLocal implements IpamPluginRunner {
  readonly calls: RecordedCall[] = [];
  /** Makes the next call fail as if the binary could not be run. */
  failNext: Error | undefined;

  async execIpam(verb: 'ADD' | 'DEL', netconf: IpamNetConf, rt: RuntimeConf): Promise<CniResult | undefined> {
    this.calls.push({ verb, netconf: structuredClone(netconf), rt: structuredClone(rt) });
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const ipam = netconf.ipam as unknown as { dataDir: string; ranges: RangeConf[][] };
    const range = ipam.ranges[0]?.[0];
    if (!range) throw new CniPluginError('host-local', verb, 7, 'no ranges');
    const dir = join(ipam.dataDir, netconf.name);
    await mkdir(dir, { recursive: true });
    if (verb === 'DEL') {
      for (const name of await readdir(dir)) {
        const content = await readFile(join(dir, name), 'utf8').catch(() => '');
        if (content === `${rt.containerId}\r\n${rt.ifName}`) await unlink(join(dir, name));
      }
      return undefined;
    }
    const subnet = parseCidr(range.subnet)!.cidr;
    const usable = usableRange(subnet);
    const first = range.rangeStart ? parseIp(range.rangeStart)!.value : usable.first;
    const last = range.rangeEnd ? parseIp(range.rangeEnd)!.value : usable.last;
    const gateway = range.gateway ? parseIp(range.gateway)!.value : subnet.network + 1n;
    const requestedText = rt.args?.find(([k]) => k === 'IP')?.[1];
    const candidates: bigint[] = [];
    if (requestedText) {
      const requested = parseIp(requestedText)!.value;
      if (requested < first || requested > last || requested === gateway) {
        throw new CniPluginError('host-local', verb, 999, `failed to allocate all requested IPs: ${requestedText}`);
      }
      candidates.push(requested);
    } else {
      for (let v = first; v <= last; v++) if (v !== gateway) candidates.push(v);
    }
    for (const value of candidates) {
      const ip = formatIp({ family: subnet.family, value });
      try {
        await writeFile(join(dir, ip), `${rt.containerId}\r\n${rt.ifName}`, { flag: 'wx' });
      } catch {
        continue;
      }
      return {
        cniVersion: '1.0.0',
        ips: [{ address: `${ip}/${subnet.prefix}`, gateway: formatIp({ family: subnet.family, value: gateway }) }],
      };
    }
    const span = `${formatIp({ family: subnet.family, value: first })}-${formatIp({ family: subnet.family, value: last })}`;
    if (requestedText) {
      throw new CniPluginError('host-local', verb, 999, `failed to allocate for range 0: requested IP address ${requestedText} is not available in range set ${span}`);
    }
    throw new CniPluginError('host-local', verb, 999, `failed to allocate for range 0: no IP addresses available in range set: ${span}`);
  }

  adds(): RecordedCall[] {
    return this.calls.filter((c) => c.verb === 'ADD');
  }

  dels(): RecordedCall[] {
    return this.calls.filter((c) => c.verb === 'DEL');
  }
}
