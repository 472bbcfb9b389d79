/**
 * The subnets a conflist declares for itself: host-local `ranges` (or the
 * older single `subnet`) and `static` addresses. These are what a Docker
 * network made from the conflist must use, or the chain's routes and the
 * addresses Docker hands out disagree.
 */
import { isRecord } from '../util/is-record.js';
import { formatCidr, parseCidr } from '../util/ip-math.js';
import type { NetConfList } from './types.js';

export interface ConfSubnet {
  family: 4 | 6;
  /** Canonical CIDR (host bits cleared). */
  subnet: string;
  gateway?: string;
  rangeStart?: string;
  rangeEnd?: string;
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

function fromRange(range: Record<string, unknown>): ConfSubnet | undefined {
  const parsed = parseCidr(str(range.subnet) ?? '');
  if (!parsed) return undefined;
  const out: ConfSubnet = { family: parsed.cidr.family, subnet: formatCidr(parsed.cidr) };
  const gateway = str(range.gateway);
  const rangeStart = str(range.rangeStart);
  const rangeEnd = str(range.rangeEnd);
  if (gateway) out.gateway = gateway;
  if (rangeStart) out.rangeStart = rangeStart;
  if (rangeEnd) out.rangeEnd = rangeEnd;
  return out;
}

/** The subnets of every plugin's IPAM section, first range of each range set, in order, without repeats. */
export function confListSubnets(list: NetConfList): ConfSubnet[] {
  const out: ConfSubnet[] = [];
  const add = (subnet: ConfSubnet | undefined): void => {
    if (subnet && !out.some((s) => s.subnet === subnet.subnet)) out.push(subnet);
  };
  for (const plugin of list.plugins) {
    const ipam = plugin.ipam;
    if (!isRecord(ipam)) continue;
    if (Array.isArray(ipam.ranges)) {
      // host-local hands out one address per range set, from its first usable range.
      for (const set of ipam.ranges) {
        if (Array.isArray(set) && isRecord(set[0])) add(fromRange(set[0]));
      }
    } else if (str(ipam.subnet)) {
      add(fromRange(ipam));
    }
    if (Array.isArray(ipam.addresses)) {
      for (const entry of ipam.addresses) {
        if (!isRecord(entry)) continue;
        const parsed = parseCidr(str(entry.address) ?? '');
        if (!parsed) continue;
        const gateway = str(entry.gateway);
        add({ family: parsed.cidr.family, subnet: formatCidr(parsed.cidr), ...(gateway ? { gateway } : {}) });
      }
    }
  }
  return out;
}
