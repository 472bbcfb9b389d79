/**
 * The order in which host-local (1.x, one range) tries addresses, so that the
 * address docker-cni reserves in a pool directory is the one host-local
 * itself would have picked there: from the address after the last one
 * reserved (`last_reserved_ip.0`) when that lies in the range, else from the
 * range's start; round to where it began (the last reserved address comes
 * last); never the gateway.
 */
export interface AllocationRange {
  first: bigint;
  last: bigint;
  gateway?: bigint;
}

export function* allocationOrder(range: AllocationRange, lastReserved?: bigint): Generator<bigint> {
  const size = range.last - range.first + 1n;
  if (size <= 0n) return;
  const resume = lastReserved !== undefined && lastReserved >= range.first && lastReserved <= range.last;
  const start = resume && lastReserved !== range.last ? lastReserved + 1n : range.first;
  for (let step = 0n; step < size; step++) {
    const offset = start - range.first + step;
    const value = range.first + (offset >= size ? offset - size : offset);
    if (value !== range.gateway) yield value;
  }
}
