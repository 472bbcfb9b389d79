/**
 * `networks`, `endpoints` (ls and inspect) and `ports`: docker-cni's records
 * joined with Docker's names. The CLI may ask Docker; when it cannot, the
 * records are shown without names and a warning goes to stderr.
 */
import type { Command } from 'commander';
import { silentLogger } from '../log.js';
import { shortId } from '../names.js';
import type { EndpointRecord, NetworkRecord } from '../network/records.js';
import { dockerApiView, type DockerNetworkView } from '../reconcile/docker-view.js';
import type { Settings } from '../settings.js';
import { buildComponents } from '../wiring.js';
import { printFields, printJson, printTable } from './output.js';

interface Names {
  network(id: string): string | undefined;
  container(endpointId: string): { id: string; name: string } | undefined;
}

async function dockerNames(settings: Settings): Promise<Names> {
  let networks: DockerNetworkView[] = [];
  try {
    networks = await dockerApiView(settings.dockerSocket).networks();
  } catch (err) {
    process.stderr.write(`warning: Docker unreachable on ${settings.dockerSocket} (${(err as Error).message}); names are not shown\n`);
  }
  const byNetwork = new Map(networks.map((n) => [n.id, n.name]));
  const byEndpoint = new Map(
    networks.flatMap((n) => n.endpoints.flatMap((e) => (e.containerId ? [[e.id, { id: e.containerId, name: e.containerName ?? '' }] as const] : []))),
  );
  return { network: (id) => byNetwork.get(id), container: (id) => byEndpoint.get(id) };
}

async function records(settings: Settings): Promise<{ networks: NetworkRecord[]; endpoints: EndpointRecord[] }> {
  const { stores } = buildComponents(settings, silentLogger);
  const networks = (await stores.networks.list()).map((r) => r.record);
  const endpoints = (await stores.endpoints.list()).map((r) => r.record);
  return { networks, endpoints };
}

function networkView(n: NetworkRecord, names: Names, endpoints: EndpointRecord[]) {
  return {
    id: n.id,
    name: names.network(n.id) ?? null,
    mode: n.mode,
    cniName: n.cniName,
    bridge: n.bridge ?? null,
    subnets: [...n.ipv4, ...n.ipv6].map((s) => s.pool),
    gateways: [...n.ipv4, ...n.ipv6].flatMap((s) => (s.gateway ? [s.gateway] : [])),
    internal: n.internal,
    endpoints: endpoints.filter((e) => e.networkId === n.id).length,
    createdAt: n.createdAt,
  };
}

function endpointView(e: EndpointRecord, names: Names) {
  const container = names.container(e.id);
  return {
    id: e.id,
    network: e.networkId,
    networkName: names.network(e.networkId) ?? null,
    container: container?.id ?? null,
    containerName: container?.name ?? null,
    status: e.status,
    link: e.hostLinkName,
    addresses: e.addresses,
    mac: e.mac ?? null,
    ports: e.portMappings,
    createdAt: e.createdAt,
  };
}

const orDash = (value: string | null | undefined): string => value ?? '-';

/** A full ID or a unique prefix of at least 4 characters. */
function pick<T extends { id: string }>(items: T[], wanted: string, what: string): T {
  const found = items.filter((i) => i.id === wanted || (wanted.length >= 4 && i.id.startsWith(wanted)));
  if (found.length === 1 && found[0]) return found[0];
  throw new Error(found.length === 0 ? `no ${what} ${wanted}` : `${wanted} names ${found.length} ${what}s; give more of the ID`);
}

export function registerInventoryCommands(program: Command, getSettings: () => Settings): void {
  const networks = program.command('networks').description('networks docker-cni has recorded, with their Docker names');
  networks
    .command('ls')
    .description('list the networks')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const settings = getSettings();
      const [{ networks: list, endpoints }, names] = await Promise.all([records(settings), dockerNames(settings)]);
      const views = list.map((n) => networkView(n, names, endpoints));
      if (opts.json) return printJson(views);
      printTable(
        ['NETWORK ID', 'NAME', 'MODE', 'BRIDGE', 'SUBNETS', 'ENDPOINTS'],
        views.map((v) => [shortId(v.id), orDash(v.name), v.mode, orDash(v.bridge), v.subnets.join(',') || '-', String(v.endpoints)]),
        'no networks',
      );
    });
  networks
    .command('inspect <network>')
    .description('show one network: an ID, an ID prefix or its Docker name')
    .option('--json', 'print JSON')
    .action(async (wanted: string, opts: { json?: boolean }) => {
      const settings = getSettings();
      const [{ networks: list, endpoints }, names] = await Promise.all([records(settings), dockerNames(settings)]);
      const byName = list.find((n) => names.network(n.id) === wanted);
      const record = byName ?? pick(list, wanted, 'network');
      const view = { ...networkView(record, names, endpoints), options: record.options, conflist: record.conflist };
      if (opts.json) return printJson(view);
      printFields([
        ['id', view.id],
        ['name', orDash(view.name)],
        ['mode', view.mode],
        ['cni name', view.cniName],
        ['bridge', orDash(view.bridge)],
        ['subnets', view.subnets.join(', ') || '-'],
        ['gateways', view.gateways.join(', ') || '-'],
        ['internal', String(view.internal)],
        ['endpoints', String(view.endpoints)],
        ['options', Object.entries(view.options).map(([k, v]) => `${k}=${v}`).join(', ') || '-'],
        ['plugins', record.conflist.plugins.map((p) => p.type).join(' -> ')],
        ['created', view.createdAt],
      ]);
    });

  const endpoints = program.command('endpoints').description('endpoints docker-cni has recorded, with their containers');
  endpoints
    .command('ls')
    .description('list the endpoints')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const settings = getSettings();
      const [{ endpoints: list }, names] = await Promise.all([records(settings), dockerNames(settings)]);
      const views = list.map((e) => endpointView(e, names));
      if (opts.json) return printJson(views);
      printTable(
        ['ENDPOINT ID', 'CONTAINER', 'NETWORK', 'STATUS', 'LINK', 'ADDRESSES'],
        views.map((v) => [shortId(v.id), orDash(v.containerName), v.networkName ?? shortId(v.network), v.status, v.link, v.addresses.join(',')]),
        'no endpoints',
      );
    });
  endpoints
    .command('inspect <endpoint>')
    .description('show one endpoint: an ID, an ID prefix or its container name')
    .option('--json', 'print JSON')
    .action(async (wanted: string, opts: { json?: boolean }) => {
      const settings = getSettings();
      const [{ endpoints: list }, names] = await Promise.all([records(settings), dockerNames(settings)]);
      const byContainer = list.filter((e) => names.container(e.id)?.name === wanted);
      if (byContainer.length > 1) throw new Error(`container ${wanted} has ${byContainer.length} endpoints here; give an endpoint ID`);
      const record = byContainer[0] ?? pick(list, wanted, 'endpoint');
      const view = { ...endpointView(record, names), gatewayV4: record.gatewayV4 ?? null, gatewayV6: record.gatewayV6 ?? null, cniArgs: record.cniArgs };
      if (opts.json) return printJson(view);
      printFields([
        ['id', view.id],
        ['container', view.container ? `${orDash(view.containerName)} (${shortId(view.container)})` : '-'],
        ['network', `${orDash(view.networkName)} (${shortId(view.network)})`],
        ['status', view.status],
        ['link', view.link],
        ['addresses', view.addresses.join(', ')],
        ['mac', orDash(view.mac)],
        ['gateways', [view.gatewayV4, view.gatewayV6].filter(Boolean).join(', ') || '-'],
        ['ports', view.ports.map((p) => `${p.hostIP ?? '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`).join(', ') || '-'],
        ['cni args', view.cniArgs.map(([k, v]) => `${k}=${v}`).join(';')],
        ['created', view.createdAt],
      ]);
    });

  program
    .command('ports')
    .description('list published ports, including the ports chosen for ephemeral (-P / HostPort 0) bindings')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const settings = getSettings();
      const [{ endpoints: list }, names] = await Promise.all([records(settings), dockerNames(settings)]);
      // One entry per endpoint, as before names were added (scripts read endpoint, network and ports).
      const published = list
        .filter((e) => e.portMappings.length > 0)
        .map((e) => endpointView(e, names))
        .map((v) => ({ endpoint: v.id, network: v.network, networkName: v.networkName, container: v.container, containerName: v.containerName, ports: v.ports }));
      if (opts.json) return printJson(published);
      const rows = published.flatMap((v) => v.ports.map((p) => ({ ...v, ...p })));
      printTable(
        ['CONTAINER', 'NETWORK', 'HOST', 'CONTAINER PORT', 'ENDPOINT'],
        rows.map((r) => [orDash(r.containerName), r.networkName ?? shortId(r.network), `${r.hostIP ?? '0.0.0.0'}:${r.hostPort}`, `${r.containerPort}/${r.protocol}`, shortId(r.endpoint)]),
        'no published ports',
      );
    });
}
