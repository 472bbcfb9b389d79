/**
 * The plugin's own time per container life, read from its debug log: each call's time as logged, and the phases
 * of the chain and of the teardown that run after the reply.
 */
import { median } from './stats.js';

export interface OwnTime {
  /** Median ms per logged RPC name. */
  calls: Record<string, { median: number; count: number }>;
  cniAdd: number;
  move: number;
  /** Whether CreateEndpoint answered before its chain ran. */
  background: boolean;
  /** CreateEndpoint's own time, with the chain's own steps after the reply when it ran there. */
  createOwn: number;
  /** createOwn plus DeleteEndpoint's answer: what Docker waits for of ours per container life. */
  lifeOwn: number;
  /** The background teardown's own steps (the record's removal), which Docker does not wait for. */
  teardownOwn: number;
}

const RPC_LINE = /"rpc":"(NetworkDriver\.(?:CreateEndpoint|Join|DeleteEndpoint)|IpamDriver\.(?:RequestAddress|ReleaseAddress))".*"ms":([0-9.]+)/;

export function ownTimeOf(log: string): OwnTime {
  const rpc: Record<string, number[]> = {};
  const cniAdd: number[] = [];
  const move: number[] = [];
  /** The chain's own steps besides ADD and the move (the 'ready' journal write), when it ran after the reply. */
  const backgroundOwn: number[] = [];
  const teardownOwn: number[] = [];
  let background = false;
  for (const line of log.split('\n')) {
    const m = RPC_LINE.exec(line);
    if (m) (rpc[m[1]!] ??= []).push(Number(m[2]));
    if (line.includes('its chain runs in the background')) background = true;
    const phases = /"phases":(\{[^}]*\})/.exec(line);
    const p = phases ? (JSON.parse(phases[1]!) as Record<string, number>) : undefined;
    if (p && line.includes('"endpoint created"')) {
      if (p.cniAdd !== undefined) cniAdd.push(p.cniAdd);
      if (p.move !== undefined) move.push(p.move);
      backgroundOwn.push((p.record ?? 0) + (p.acquire ?? 0) + (p.journal ?? 0));
    }
    if (p && line.includes('"endpoint deleted"')) teardownOwn.push((p.journal ?? 0) + (p.record ?? 0));
  }
  const create = median(rpc['NetworkDriver.CreateEndpoint'] ?? []);
  // Answered before the chain runs, CreateEndpoint's whole time is our own, plus the chain's journal write after it;
  // answered after it, CreateEndpoint's time less the chain's ADD and move is.
  const createOwn = background ? create + median(backgroundOwn) : create - median(cniAdd) - median(move);
  const calls = Object.fromEntries(Object.entries(rpc).map(([name, values]) => [name, { median: median(values), count: values.length }]));
  return {
    calls,
    cniAdd: median(cniAdd),
    move: median(move),
    background,
    createOwn,
    lifeOwn: createOwn + median(rpc['NetworkDriver.DeleteEndpoint'] ?? []),
    teardownOwn: median(teardownOwn),
  };
}
