import { readFileSync } from 'node:fs';

/** utime+stime and cutime+cstime (its reaped children's) of one process, in ms, from /proc (clock ticks of 10 ms). */
export function cpuTimesOf(pid: number | 'self'): { self: number; reaped: number } {
  // Fields after the ")" that closes the command name: utime is the 12th, then stime, cutime, cstime.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').map(Number);
  return { self: (fields[11]! + fields[12]!) * 10, reaped: (fields[13]! + fields[14]!) * 10 };
}
