/**
 * `docker-cni doctor`: the preflight of `serve` and much more, from outside
 * the plugin. Exits 1 when any finding fails; every finding that is not ok
 * carries its fix.
 */
import type { Command } from 'commander';
import type { Settings } from '../../settings.js';
import { printJson, printTable, status } from '../output.js';
import { confDirFindings, pluginFindings } from './cni-checks.js';
import type { Finding } from './finding.js';
import { iptablesFindings, kernelModuleFindings } from './host-checks.js';
import { dockerFindings, gcFindings, socketFindings, staleFindings, stateDirFindings } from './state-checks.js';

export async function runDoctor(settings: Settings): Promise<Finding[]> {
  const [socket, docker] = await Promise.all([socketFindings(settings), dockerFindings(settings)]);
  const groups = await Promise.all([
    Promise.resolve(kernelModuleFindings()),
    iptablesFindings(),
    pluginFindings(settings),
    confDirFindings(settings),
    Promise.resolve(socket.findings),
    stateDirFindings(settings),
    Promise.resolve(docker.findings),
    staleFindings(settings, socket.serving),
    gcFindings(settings, docker.reachable),
  ]);
  return groups.flat();
}

const mark = { ok: status.ok('ok'), warn: status.warn('warn'), fail: status.fail('FAIL') } as const;

export function registerDoctor(program: Command, getSettings: () => Settings): void {
  program
    .command('doctor')
    .description('check the host, the CNI plugins and conf dir, the socket, the state and Docker; exit 1 on a problem')
    .option('--json', 'print the findings as JSON')
    .action(async (opts: { json?: boolean }) => {
      const findings = await runDoctor(getSettings());
      const failed = findings.filter((f) => f.status === 'fail').length;
      const warned = findings.filter((f) => f.status === 'warn').length;
      if (opts.json) {
        printJson({ ok: failed === 0, failed, warned, findings });
      } else {
        printTable(
          ['', 'AREA', 'CHECK', 'DETAIL', 'FIX'],
          findings.map((f) => [mark[f.status], f.area, f.check, f.detail, f.fix ?? '']),
          'nothing checked',
        );
        process.stdout.write(`${failed === 0 ? status.ok('no problems') : status.fail(`${failed} problem(s)`)}${warned ? `, ${warned} warning(s)` : ''}\n`);
      }
      if (failed > 0) process.exitCode = 1;
    });
}
