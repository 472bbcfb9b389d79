import { pino, type Logger } from 'pino';
import type { Settings } from './settings.js';

export type { Logger };

/** JSON lines on stdout: dockerd collects a managed plugin's stdout into its log. */
export function createLogger(level: Settings['logLevel']): Logger {
  return pino({ level, base: { name: 'docker-cni' } });
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
