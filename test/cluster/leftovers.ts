/**
 * What docker-cni has made on a simulated host, read from the host's netns:
 * its links (host ends `dc<13 hex>`, generated bridges `dcni-<10 hex>`) and
 * its routes to other hosts' blocks (protocol 218). Empty once every network
 * and container of the tests is gone.
 */
import { ROUTE_PROTO } from '../../src/cluster/names.js';
import { endpointPrefixOfHostLink, networkPrefixOfBridge } from '../../src/names.js';
import { inHost } from './sim.js';

const isOurLink = (name: string): boolean => endpointPrefixOfHostLink(name) !== undefined || networkPrefixOfBridge(name) !== undefined;

export async function pluginLeftovers(i: number): Promise<string[]> {
  const links = (await inHost(i, 'ip', ['-br', 'link']))
    .split('\n')
    .map((line) => (line.split(/\s+/)[0] ?? '').replace(/@.*/, ''))
    .filter(isOurLink);
  const routes = (await inHost(i, 'ip', ['-4', 'route', 'show', 'proto', ROUTE_PROTO])).split('\n').filter((l) => l.trim() !== '');
  return [...links.map((l) => `link ${l}`), ...routes.map((r) => `route ${r}`)];
}
