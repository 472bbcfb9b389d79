/* Spawn cost of execa against plain child_process.spawn (the executor uses the latter): node --import tsx bench/spawn-cost.ts */
import { execa } from 'execa';
import { spawnCapture } from '../src/util/spawn-capture.js';
const N = 60;
const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const a: number[] = [], b: number[] = [];
for (let i = 0; i < N; i++) {
  let t = performance.now(); await execa('/bin/true', [], { input: '{}' }); a.push(performance.now() - t);
  t = performance.now(); await spawnCapture('/bin/true', [], { input: '{}' }); b.push(performance.now() - t);
}
console.log('execa median ms', med(a).toFixed(2), 'spawn median ms', med(b).toFixed(2));
let t = performance.now(); await Promise.all(Array.from({ length: 50 }, () => execa('/bin/true', [], { input: '{}' }))); const pa = performance.now() - t;
t = performance.now(); await Promise.all(Array.from({ length: 50 }, () => spawnCapture('/bin/true', [], { input: '{}' }))); const pb = performance.now() - t;
console.log('50 parallel: execa', pa.toFixed(0), 'spawn', pb.toFixed(0));
