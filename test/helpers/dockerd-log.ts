/**
 * Reading a managed plugin's output: dockerd collects a managed plugin's stdout
 * and stderr into its own log, one `msg="<line>" plugin=<id>` entry per line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { HOST_DOCKER_PIDFILE, HOST_DOCKER_SOCKET, dockerdPid, outputFileOf } from './dockerd-process.js';

/**
 * What the plugin with this ID wrote to stdout/stderr, as it wrote it: dockerd
 * logs each line as `... msg="<line, quoted>" plugin=<id>`, so the quoting is
 * undone here. Needs the host dockerd's output to be a file this process can read.
 */
export function managedPluginLog(pluginId: string): string | undefined {
  const pid = dockerdPid(HOST_DOCKER_SOCKET, HOST_DOCKER_PIDFILE);
  const dockerdLog = pid === undefined ? undefined : outputFileOf(pid);
  if (!dockerdLog || !existsSync(dockerdLog)) return undefined;
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
