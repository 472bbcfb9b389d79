import { destination, pino, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type { Settings } from './settings.js';

export type { Logger };

/**
 * JSON lines on stdout, which dockerd collects into its log for a managed
 * plugin and journald for the unit; readable, coloured lines when stdout is
 * a terminal (npm start by hand).
 */
export function createLogger(level: Settings['logLevel'], terminal = process.stdout.isTTY === true): Logger {
  const options = { level, base: { name: 'docker-cni' } };
  // Written off the request path: a synchronous write per line blocked every plugin call behind the
  // log's consumer (a file or dockerd's pipe). pino flushes what is pending when the process exits.
  if (!terminal) return pino(options, destination({ dest: 1, sync: false }));
  // Required only for a terminal: the plugin under dockerd or systemd never pays for the pretty printer.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
  return pino(options, pretty({ colorize: true, sync: true, ignore: 'pid,hostname,name', translateTime: 'SYS:HH:MM:ss.l' }));
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
