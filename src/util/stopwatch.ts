import { performance } from 'node:perf_hooks';

/** Milliseconds per named phase, logged at debug to show where a hot-path call spends its time. */
export class Stopwatch {
  readonly laps: Record<string, number> = {};
  private last = performance.now();

  lap(name: string): void {
    const now = performance.now();
    this.laps[name] = Math.round((now - this.last) * 10) / 10;
    this.last = now;
  }
}
