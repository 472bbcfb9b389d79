/**
 * `--ipam-opt cni.network=<name>`: the pool comes from the conflist's own
 * range. Docker sends RequestPool only the --ipam-opt options (never the
 * network's -o options), so this is the one way the IPAM driver can learn
 * which conflist a network will use.
 */
import type { ConfSubnet } from '../cni/ranges.js';
import { invalid } from '../errors.js';
import { formatCidr, parseCidr, type Cidr, type IpFamily } from '../util/ip-math.js';

/** The key shared with the network driver's `-o cni.network`. */
export const IPAM_CONFLIST_OPTION = 'cni.network';

export interface ConflistPool {
  pool: Cidr;
  rangeStart?: string;
  rangeEnd?: string;
}

/**
 * The pool of `family` a conflist dictates, or undefined when it declares
 * none of that family (then Docker's request stands). A --subnet that is not
 * one of the conflist's subnets is refused, naming both.
 */
export function conflistPool(name: string, family: IpFamily, explicit: Cidr | undefined, subnets: ConfSubnet[]): ConflistPool | undefined {
  const ofFamily = subnets.filter((s) => s.family === family);
  if (ofFamily.length === 0) return undefined;
  const match = explicit ? ofFamily.find((s) => s.subnet === formatCidr(explicit)) : ofFamily[0];
  if (!match) {
    throw invalid(
      `subnet ${explicit ? formatCidr(explicit) : '?'} contradicts conflist "${name}", whose IPv${family} range is ${ofFamily.map((s) => s.subnet).join(', ')}`,
    );
  }
  const parsed = parseCidr(match.subnet);
  if (!parsed) throw invalid(`conflist "${name}" has an invalid subnet ${match.subnet}`);
  return {
    pool: parsed.cidr,
    ...(match.rangeStart ? { rangeStart: match.rangeStart } : {}),
    ...(match.rangeEnd ? { rangeEnd: match.rangeEnd } : {}),
  };
}
