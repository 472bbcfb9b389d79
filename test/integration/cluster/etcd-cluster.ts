/**
 * A real 3-member etcd on loopback for the cluster integration tests: unique
 * ports, private data dirs in a temp dir, every member a child process that
 * is killed by its own PID and removed afterwards.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';

export const ETCD_BIN = '/usr/bin/etcd';

export function etcdInstalled(): boolean {
  return spawnSync(ETCD_BIN, ['--version'], { stdio: 'ignore' }).status === 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  child?: ChildProcess;
  log: string[];
}

export class EtcdCluster {
  private constructor(
    private readonly root: string,
    private readonly members: Member[],
  ) {}

  static async start(size = 3): Promise<EtcdCluster> {
    const root = await mkdtemp(join(tmpdir(), 'dcni-etcd-'));
    const members: Member[] = [];
    for (let i = 0; i < size; i++) {
      members.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: join(root, `m${i}`), log: [] });
    }
    const cluster = new EtcdCluster(root, members);
    for (let i = 0; i < size; i++) cluster.spawnMember(i, 'new');
    await cluster.waitHealthy();
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  private spawnMember(i: number, state: 'new' | 'existing'): void {
    const m = this.members[i]!;
    const initialCluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const child = spawn(
      ETCD_BIN,
      [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', `dcni-${process.pid}`,
        '--initial-cluster-state', state,
        '--heartbeat-interval', '50',
        '--election-timeout', '500',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (chunk: Buffer) => {
      m.log.push(chunk.toString());
      if (m.log.length > 200) m.log.shift();
    });
    m.child = child;
  }

  /** Waits (bounded) until a write through every running member's endpoint succeeds. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const running = this.members.filter((m) => m.child && m.child.exitCode === null && m.child.signalCode === null);
    for (const m of running) {
      const client = new Etcd3({ hosts: `http://127.0.0.1:${m.clientPort}`, dialTimeout: 1000 });
      try {
        for (;;) {
          try {
            await client.put('/dcni-test/health').value(m.name).options({ deadline: Date.now() + 1000 }).exec();
            break;
          } catch (err) {
            if (Date.now() > deadline) throw new Error(`etcd ${m.name} not healthy: ${String(err)}\n${m.log.join('').slice(-2000)}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      } finally {
        client.close();
      }
    }
  }

  /** SIGKILLs member i (by its PID) and waits for it to be gone. */
  async kill(i: number): Promise<void> {
    const child = this.members[i]?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.kill(i)));
  }

  /** Restarts member i from its data dir. */
  restart(i: number): void {
    this.spawnMember(i, 'existing');
  }

  /** Kills every member and removes all data. */
  async destroy(): Promise<void> {
    await this.killAll();
    await rm(this.root, { recursive: true, force: true });
  }

  /** A plain client for assertions. */
  client(): Etcd3 {
    return new Etcd3({ hosts: this.endpoints, dialTimeout: 2000 });
  }
}
