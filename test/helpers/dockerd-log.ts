/**
 * Reading a managed plugin's output: dockerd collects a managed plugin's stdout
 * and stderr into its own log, one `msg="<line>" plugin=<id>` entry per line.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * What the plugin with this ID wrote to stdout/stderr, as it wrote it: dockerd
 * logs each line as `... msg="<line, quoted>" plugin=<id>`, so the quoting is
 * undone here. Needs dockerd's output to be a file this process can read.
 */
export function managedPluginLog(pluginId: string): string | undefined {
  const dockerdLog = dockerdLogFile();
  if (!dockerdLog) return undefined;
  let text: string;
  try {
    text = readFileSync(dockerdLog, 'utf8');
  } catch {
    return undefined;
  }
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.endsWith(` plugin=${pluginId}`)) continue;
    const quoted = / msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
    if (quoted === undefined) continue;
    try {
      lines.push(JSON.parse(`"${quoted}"`) as string);
    } catch {
      lines.push(quoted);
    }
  }
  return lines.join('\n');
}

/** The last lines of managedPluginLog, for diagnostics. */
export function managedPluginLogTail(pluginId: string, lines = 60): string {
  const log = managedPluginLog(pluginId);
  if (log === undefined) return "(dockerd's log is not a readable file)";
  return log ? log.split('\n').slice(-lines).join('\n') : `(nothing from plugin ${pluginId.slice(0, 12)} in dockerd's log)`;
}

function dockerdLogFile(): string | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'dockerd') continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      // The host daemon: no -H/--host pointing elsewhere.
      if (argv.some((arg) => arg === '-H' || arg.startsWith('--host'))) continue;
      const target = readlinkOrUndefined(`/proc/${entry}/fd/1`);
      if (target?.startsWith('/') && existsSync(target)) return target;
    } catch {
      // process gone
    }
  }
  return undefined;
}

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}
