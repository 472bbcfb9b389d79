// Child process for host-lock.test.ts: argv = lock name, counter file, rounds,
// mode. "count": each round reads the counter, yields, and writes it plus one,
// under the lock (lost updates show a broken lock). "hold": takes the lock,
// says "held" and waits to be killed.
import { readFile, writeFile } from 'node:fs/promises';
import { withHostLock } from '../../../src/util/host-lock.js';

const [name = '', file = '', rounds = '0', mode = 'count'] = process.argv.slice(2);

if (mode === 'hold') {
  await withHostLock(name, async () => {
    process.stdout.write('held\n');
    await new Promise(() => setInterval(() => undefined, 1000));
  });
} else {
  for (let i = 0; i < Number(rounds); i++) {
    await withHostLock(name, async () => {
      const value = Number(await readFile(file, 'utf8'));
      await new Promise((resolve) => setTimeout(resolve, 1));
      await writeFile(file, String(value + 1));
    });
  }
}
