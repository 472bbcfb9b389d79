/** `docker-cni version` and `--version`: this build, the runtime and the protocols it speaks. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { KNOWN_VERSIONS } from '../cni/index.js';
import { printFields, printJson } from './output.js';

/** package.json sits two levels above dist/cli/ (and src/cli/ under tsx). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? '0.0.0';
}

export function versionInfo() {
  return {
    version: packageVersion(),
    node: process.versions.node,
    platform: `${process.platform}/${process.arch}`,
    cniSpecVersions: [...KNOWN_VERSIONS],
    pluginApi: ['NetworkDriver', 'IpamDriver'],
  };
}

export function registerVersion(program: Command): void {
  program.version(packageVersion(), '-V, --version', 'print the version');
  program
    .command('version')
    .description('print the version, the Node runtime and the CNI spec versions supported')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const info = versionInfo();
      if (opts.json) return printJson(info);
      printFields([
        ['docker-cni', info.version],
        ['node', info.node],
        ['platform', info.platform],
        ['CNI spec', info.cniSpecVersions.join(', ')],
        ['plugin API', info.pluginApi.join(', ')],
      ]);
    });
}
