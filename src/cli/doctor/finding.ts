/** One line of `docker-cni doctor`: what was checked, how it went, and how to fix it. */
export type FindingStatus = 'ok' | 'warn' | 'fail';

export interface Finding {
  /** Group, e.g. "kernel", "iptables", "cni", "conf", "socket", "state", "docker", "gc". */
  area: string;
  check: string;
  status: FindingStatus;
  detail: string;
  /** What to do about it; always set unless status is ok. */
  fix?: string;
}

export const ok = (area: string, check: string, detail: string): Finding => ({ area, check, status: 'ok', detail });
export const warn = (area: string, check: string, detail: string, fix: string): Finding => ({ area, check, status: 'warn', detail, fix });
export const fail = (area: string, check: string, detail: string, fix: string): Finding => ({ area, check, status: 'fail', detail, fix });
