import type { Command } from 'commander';
import { silentLogger } from '../log.js';
import { buildComponents } from '../wiring.js';
import type { Settings } from '../settings.js';

/** Read-only views of the plugin's persisted state, for operators. */
export function registerStateCommands(program: Command, getSettings: () => Settings): void {
  program
    .command('gc')
    .description('remove what Docker no longer knows: endpoints, networks, pools, reservations, CNI cache entries, links, rules')
    .option('--dry-run', 'only report what would be removed')
    .option('--json', 'print the report as JSON')
    .option('--grace-seconds <n>', 'leave objects younger than this alone', '60')
    .action(async (opts: { dryRun?: boolean; json?: boolean; graceSeconds: string }) => {
      const settings = getSettings();
      const components = buildComponents(settings, silentLogger);
      // Recovery of in-flight operations belongs to the serving plugin, not to a CLI running beside it.
      await components.network.init({ recover: false });
      const grace = Number(opts.graceSeconds);
      if (!Number.isFinite(grace) || grace < 0) throw new Error(`--grace-seconds must be a non-negative number`);
      const reconciler = components.oneShotReconciler(grace * 1000);
      const report = await reconciler.runPass({ dryRun: opts.dryRun ?? false }).finally(() => components.staging.destroyAll());
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        if (!report.dockerReachable) process.stdout.write('warning: Docker was not reachable; only local state was checked\n');
        for (const a of report.actions) {
          process.stdout.write(`${opts.dryRun ? 'would remove' : a.error ? 'FAILED to remove' : 'removed'} ${a.kind} ${a.id}: ${a.reason}${a.error ? ` (${a.error})` : ''}\n`);
        }
        if (report.actions.length === 0) process.stdout.write('nothing to collect\n');
      }
      if (report.actions.some((a) => a.error)) process.exitCode = 1;
    });

  program
    .command('state')
    .description('print the networks, endpoints and pools docker-cni has recorded')
    .action(async () => {
      const { stores } = buildComponents(getSettings(), silentLogger);
      const out = {
        networks: (await stores.networks.list()).map(({ record }) => ({
          id: record.id,
          mode: record.mode,
          cniName: record.cniName,
          bridge: record.bridge,
          ipv4: record.ipv4,
          ipv6: record.ipv6,
        })),
        endpoints: (await stores.endpoints.list()).map(({ record }) => ({
          id: record.id,
          network: record.networkId,
          status: record.status,
          link: record.hostLinkName,
          addresses: record.addresses,
        })),
        pools: (await stores.pools.list()).map(({ record }) => record),
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });
}
