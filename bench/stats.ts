/** Summary statistics the benches print. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return NaN;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
export const p90 = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.9)] ?? NaN;
export const fmt = (ms: number): string => ms.toFixed(ms < 10 ? 2 : 0);
