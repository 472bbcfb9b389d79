/**
 * What docker-cni has made on a simulated host, read from the host's netns:
 * its links (host ends `dc<13 hex>`, generated bridges `dcni-<10 hex>`) and
 * its routes to other hosts' blocks (protocol 218). Empty once every network
 * and container of the tests is gone.
 */
import { inHost } from './sim.js';

const OUR_LINK = /^(dc[0-9a-f]{13}|dcni-[0-9a-f]{10})$/;

export async function pluginLeftovers(i: number): Promise<string[]> {
  const links = (await inHost(i, 'ip', ['-br', 'link']))
    .split('\n')
    .map((line) => (line.split(/\s+/)[0] ?? '').replace(/@.*/, ''))
    .filter((name) => OUR_LINK.test(name));
  const routes = (await inHost(i, 'ip', ['-4', 'route', 'show', 'proto', '218'])).split('\n').filter((l) => l.trim() !== '');
  return [...links.map((l) => `link ${l}`), ...routes.map((r) => `route ${r}`)];
}
