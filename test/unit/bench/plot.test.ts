import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plotSamples, type EngineSamples } from '../../../bench/plot.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Deterministic, spread-out times so the plot has something to draw. */
const times = (n: number, base: number): number[] => Array.from({ length: n }, (_, i) => base + ((i * 37) % 101));

const engine = (name: string, base: number): EngineSamples => ({
  engine: name,
  cniPlugins: '1.1.1',
  date: '2026-11-27T00:00:00Z',
  dockerRun: { none: times(30, base - 80), bridge: times(30, base), cniDockerIpam: times(30, base + 10), cniIpam: times(30, base + 20) },
  burst: { size: 50, start: { bridge: times(3, base * 13), cniIpam: times(3, base * 14) }, remove: { bridge: times(3, 5000), cniIpam: times(3, 4800) } },
});

async function plotted(samples: unknown): Promise<{ png: Buffer; width: number; height: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'docker-cni-plot-'));
  try {
    const out = join(dir, 'docker-run.png');
    await plotSamples(samples, out);
    const png = await readFile(out);
    // IHDR is the first chunk: length(4) type(4) then width and height, big-endian.
    assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
    return { png, width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('bench plot', () => {
  test('plots several engines side by side into a PNG about 1000 px wide', async () => {
    const { png, width, height } = await plotted([engine('dockerd 20.10', 600), engine('dockerd 28.5', 400)]);
    assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
    assert.ok(width >= 800 && width <= 1400, `width ${width}`);
    assert.ok(height >= 300 && height <= 1400, `height ${height}`);
    assert.ok(png.length > 10_000, `only ${png.length} bytes`);
  });

  test('accepts a single engine object without burst samples', async () => {
    const { burst: _burst, ...single } = engine('dockerd 28.5', 400);
    const { png, width } = await plotted(single);
    assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
    assert.ok(width >= 800 && width <= 1400, `width ${width}`);
  });

  test('refuses samples of the wrong shape, naming the field', async () => {
    await assert.rejects(plotSamples({ engine: 'dockerd 28.5', cniPlugins: '1.1.1', date: 'today', dockerRun: { bridge: ['fast'] } }, join(tmpdir(), 'never-written.png')), /dockerRun/);
  });
});
