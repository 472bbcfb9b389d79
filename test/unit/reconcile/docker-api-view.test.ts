/* The small Docker API client: the two GETs the reconciler needs, against a fake engine on a unix socket. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginError } from '../../../src/errors.js';
import { dockerHttp } from '../../../src/reconcile/docker-http.js';
import { dockerApiView } from '../../../src/reconcile/docker-view.js';

const NET = 'a'.repeat(64);
/** A swarm-scoped network's ID: 25 characters of base 36. */
const SWARM_NET = '3happno4u297ehgxkgjgqt2zz';

describe('dockerApiView', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  const seen: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcni-dockerapi-'));
    socket = join(dir, 'docker.sock');
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.setHeader('Content-Type', 'application/json');
        if (req.url === '/networks') {
          return res.end(JSON.stringify([{ Id: NET, Name: 'n1' }, { Id: '../bad', Name: 'x' }, { Id: SWARM_NET, Name: 'span' }]));
        }
        if (req.url === `/networks/${SWARM_NET}`) return res.end(JSON.stringify({ IPAM: { Config: [{ Subnet: '10.233.9.0/24' }] }, Containers: {} }));
        if (req.url === `/networks/${NET}`) {
          return res.end(JSON.stringify({ IPAM: { Config: [{ Subnet: '10.231.9.0/24' }] }, Containers: { c1: { EndpointID: 'e1', IPv4Address: '10.231.9.2/24', IPv6Address: '' } } }));
        }
        if (req.url === '/echo') return res.end(body);
        res.statusCode = 404;
        res.end(JSON.stringify({ message: 'no such thing' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  test('lists networks, swarm-scoped ones included, with subnets and endpoint addresses; malformed IDs are never put into a path', async () => {
    const networks = await dockerApiView(socket).networks();
    assert.deepEqual(networks, [
      { id: NET, name: 'n1', subnets: ['10.231.9.0/24'], endpoints: [{ id: 'e1', addresses: ['10.231.9.2'], containerId: 'c1', containerName: '' }] },
      { id: SWARM_NET, name: 'span', subnets: ['10.233.9.0/24'], endpoints: [] },
    ]);
    assert.ok(!seen.some((s) => s.includes('bad')));
  });

  test('POST carries a JSON body; a non-2xx reply is a typed error with the status', async () => {
    assert.deepEqual(await dockerHttp(socket).call('POST', '/echo', { Name: 'x' }), { Name: 'x' });
    await assert.rejects(dockerHttp(socket).call('DELETE', '/nothing'), (err: unknown) => err instanceof PluginError && /HTTP 404/.test(err.message));
  });

  test('an absent socket is a typed error', async () => {
    await assert.rejects(dockerHttp(join(dir, 'none.sock')).call('GET', '/networks'), (err: unknown) => err instanceof PluginError && err.code === 'HOST_FAILED');
  });
});
