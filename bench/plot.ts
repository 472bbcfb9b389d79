/**
 * The PNG next to bench/RESULTS.md: per engine, the distribution of `docker run --rm` times per
 * variant (each run a tick, box = quartiles with the median, diamond = p90), and the burst totals.
 * A Vega-Lite spec, rendered to SVG by Vega and rasterised by resvg (dev dependencies only).
 *   node --import tsx bench/plot.ts [samples.json] [out.png]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { z } from 'zod';
import { median, p90 } from './stats.js';

const series = z.record(z.string(), z.array(z.number().finite().nonnegative()));
const engineSamples = z.object({
  engine: z.string().min(1),
  cniPlugins: z.string(),
  date: z.string(),
  dockerRun: series,
  burst: z.object({ size: z.number().int().positive(), start: series, remove: series }).optional(),
});
export type EngineSamples = z.infer<typeof engineSamples>;
/** One engine's samples, or one entry per engine (plotted side by side). */
export type Samples = EngineSamples | EngineSamples[];

const LABELS: Record<string, string> = {
  none: 'none',
  bridge: 'Docker bridge',
  cniDockerIpam: 'docker-cni (Docker IPAM)',
  cniIpam: 'docker-cni (cni IPAM)',
  firstBurstCniIpam: 'docker-cni (cni IPAM), 1st burst',
};
const ORDER = Object.values(LABELS);
const COLORS = ['#8c8c8c', '#4c78a8', '#f58518', '#54a24b', '#e45756', '#b279a2', '#72b7b2', '#9d755d'];
const FONT = 'DejaVu Sans';
const FONT_DIR = '/usr/share/fonts/truetype/dejavu';
const WIDTH = 1000;

interface Row { engine: string; variant: string; ms: number; kind: 'run' | 'median' | 'p90'; phase?: string }

function rows(runs: readonly EngineSamples[], pick: (s: EngineSamples) => [string, Record<string, number[]>][]): Row[] {
  return runs.flatMap((s) => {
    const picked = pick(s);
    const n = Math.max(0, ...picked.flatMap(([, byVariant]) => Object.values(byVariant).map((v) => v.length)));
    const engine = `${s.engine} (n=${n})`;
    return picked.flatMap(([phase, byVariant]) =>
      Object.entries(byVariant).flatMap(([key, values]) => {
        const variant = LABELS[key] ?? key;
        const runRows = values.map((ms): Row => ({ engine, variant, ms, kind: 'run', phase }));
        return values.length ? [...runRows, { engine, variant, ms: median(values), kind: 'median', phase }, { engine, variant, ms: p90(values), kind: 'p90', phase }] : [];
      }),
    );
  });
}

/** One faceted strip-and-box chart: a column per engine, and a row per phase when there are phases. */
function distribution(values: Row[], title: string, xTitle: string, byPhase: boolean, columns: number): object {
  // Variants the bench may add later keep a colour and sort after the known ones.
  const variants = [...new Set([...ORDER, ...values.map((r) => r.variant)])];
  const colour = { field: 'variant', type: 'nominal', scale: { domain: variants, range: COLORS }, legend: null };
  const y = { field: 'variant', type: 'nominal', title: null, sort: variants };
  const x = { field: 'ms', type: 'quantitative', title: xTitle, scale: { zero: false, nice: true, padding: 12 } };
  const runs = { filter: "datum.kind === 'run'" };
  const header = { labelFontSize: 14, labelFontWeight: 'bold' };
  return {
    title: { text: title, anchor: 'start', fontSize: 15, offset: 12 },
    data: { values },
    facet: {
      column: { field: 'engine', type: 'nominal', title: null, header },
      ...(byPhase ? { row: { field: 'phase', type: 'nominal', title: null, sort: 'descending', header: { ...header, labelAngle: 0, labelAlign: 'left', labelOrient: 'top' } } } : {}),
    },
    spec: {
      width: Math.floor((WIDTH - 250) / columns),
      height: { step: 30 },
      layer: [
        { transform: [runs], mark: { type: 'boxplot', extent: 'min-max', size: 20, opacity: 0.3, median: false, rule: false, ticks: false }, encoding: { x, y, color: colour } },
        { transform: [runs], mark: { type: 'tick', thickness: 1.5, size: 24, opacity: 0.8 }, encoding: { x, y, color: colour } },
        { transform: [{ filter: "datum.kind === 'median'" }], mark: { type: 'tick', thickness: 3, size: 30, color: 'black' }, encoding: { x, y } },
        { transform: [{ filter: "datum.kind === 'p90'" }], mark: { type: 'point', shape: 'diamond', filled: true, size: 120, color: 'black' }, encoding: { x, y } },
      ],
    },
    spacing: { column: 20, row: 10 },
    resolve: { scale: { x: byPhase ? 'independent' : 'shared' } },
  };
}

export function plotSpec(samples: Samples): TopLevelSpec {
  const runs = Array.isArray(samples) ? samples : [samples];
  const charts = [distribution(rows(runs, (s) => [['run', s.dockerRun]]), 'docker run --rm: time per run', 'ms per docker run --rm', false, runs.length)];
  const withBurst = runs.filter((s) => s.burst && Object.keys(s.burst.start).length + Object.keys(s.burst.remove).length > 0);
  if (withBurst.length) {
    const size = withBurst[0]!.burst!.size;
    const burstRows = rows(withBurst, (s) => [[`start all ${s.burst!.size}`, s.burst!.start], [`remove all ${s.burst!.size}`, s.burst!.remove]]);
    charts.push(distribution(burstRows, `${size} containers at once (docker run -d / docker rm -f): time for the whole burst`, 'ms for the whole burst', true, withBurst.length));
  }
  const meta = runs.map((s) => `${s.engine}: CNI plugins ${s.cniPlugins}, ${s.date}`);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'docker-cni bench', subtitle: ['ticks: each run · box: quartiles · black bar = median · ◆ = p90', ...meta], fontSize: 18, anchor: 'start', offset: 8 },
    vconcat: charts,
    spacing: 30,
    background: 'white',
    padding: 16,
    config: { font: FONT, axis: { labelFontSize: 12, titleFontSize: 13, labelLimit: 320, grid: true }, title: { subtitleFontSize: 12 } },
  } as TopLevelSpec;
}

export async function renderPng(spec: TopLevelSpec): Promise<Buffer> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const fontFiles = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => `${FONT_DIR}/${f}`).filter((f) => existsSync(f));
  const png = new Resvg(svg, { font: { fontFiles, loadSystemFonts: fontFiles.length === 0, defaultFontFamily: FONT }, background: 'white' }).render();
  return png.asPng();
}

/** Validates the samples, plots them and writes the PNG to outPath. */
export async function plotSamples(samples: unknown, outPath: string): Promise<void> {
  const parsed = z.array(engineSamples).min(1).safeParse(Array.isArray(samples) ? samples : [samples]);
  if (!parsed.success) throw new Error(`bench/plot: samples do not have the expected shape: ${z.prettifyError(parsed.error)}`);
  writeFileSync(outPath, await renderPng(plotSpec(parsed.data)));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const input = process.argv[2] ?? 'bench/samples.json';
  const output = process.argv[3] ?? 'bench/docker-run.png';
  await plotSamples(JSON.parse(readFileSync(input, 'utf8')) as unknown, output);
  console.log(`bench/plot: ${input} -> ${output}`);
}
