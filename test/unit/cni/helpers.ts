import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PluginExecutor } from '../../../src/cni/exec.js';
import { PluginError } from '../../../src/errors.js';

export const FAKE_PLUGIN = fileURLToPath(new URL('../../fixtures/fake-cni/fake-plugin.cjs', import.meta.url));

export async function tempDir(prefix = 'cni-unit-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A temp bin dir holding the fake plugin under each name; `versions` sets a plugin's supported versions. */
export async function fakeBinDir(names: string[], versions: Record<string, string[]> = {}): Promise<string> {
  const dir = await tempDir('cni-bin-');
  for (const name of names) {
    const target = join(dir, name);
    await copyFile(FAKE_PLUGIN, target);
    await chmod(target, 0o755);
    const supported = versions[name];
    if (supported) await writeFile(`${target}.versions.json`, JSON.stringify(supported));
  }
  return dir;
}

export interface RecordedCall {
  command: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

export async function readCalls(file: string): Promise<RecordedCall[]> {
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as RecordedCall);
}

export interface ExecCall {
  type: string;
  verb: string;
  env: Record<string, string>;
  conf: Record<string, unknown>;
}

type Responder = (call: ExecCall) => unknown;

/**
 * A PluginExecutor that runs nothing: it records each call and answers with
 * whatever the responder returns (an object becomes stdout JSON, an Error is
 * thrown, undefined means empty stdout). Default: ADD echoes prevResult or a
 * small result; VERSION lists 0.3.0 - 1.0.0.
 */
export class RecordingExecutor implements PluginExecutor {
  readonly calls: ExecCall[] = [];
  findInPathCalls = 0;
  versions: Record<string, string[]> = {};
  constructor(public responder: Responder = () => undefined) {}

  async findInPath(pluginType: string, dirs: string[]): Promise<string> {
    this.findInPathCalls++;
    if (pluginType.includes('/') || pluginType.includes('..')) throw new PluginError('INVALID_ARGUMENT', 'bad type');
    if (pluginType.startsWith('missing')) throw new PluginError('NOT_FOUND', `${pluginType} not in ${dirs.join(',')}`);
    return `/fake-bin/${pluginType}`;
  }

  async execPlugin(pluginPath: string, stdin: Buffer, env: Record<string, string>): Promise<Buffer> {
    const call: ExecCall = {
      type: basename(pluginPath),
      verb: env.CNI_COMMAND ?? '',
      env: { ...env },
      conf: JSON.parse(stdin.toString('utf8')) as Record<string, unknown>,
    };
    this.calls.push(call);
    const answer = this.responder(call) ?? this.defaultAnswer(call);
    if (answer instanceof Error) throw answer;
    if (answer === null) return Buffer.alloc(0);
    return Buffer.from(typeof answer === 'string' ? answer : JSON.stringify(answer));
  }

  private defaultAnswer(call: ExecCall): unknown {
    if (call.verb === 'VERSION') {
      const supported = this.versions[call.type] ?? ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];
      return { cniVersion: supported[supported.length - 1], supportedVersions: supported };
    }
    if (call.verb !== 'ADD') return null;
    if (call.conf.prevResult) return call.conf.prevResult;
    return {
      cniVersion: call.conf.cniVersion,
      interfaces: [{ name: call.env.CNI_IFNAME, sandbox: call.env.CNI_NETNS }],
      ips: [{ address: '10.232.250.2/24', gateway: '10.232.250.1', interface: 0 }],
    };
  }

  verbs(): string[] {
    return this.calls.map((call) => `${call.type}:${call.verb}`);
  }
}
