import type { CommandOptions, CommandRunner } from '../../../src/host/command.js';

export interface RunnerCall {
  file: string;
  args: string[];
  input?: string;
}

/**
 * A CommandRunner that records every command and answers from handlers keyed
 * by program name (`respond('iptables-save', () => text)`); unknown programs
 * answer ''. A handler may throw to simulate a failing command.
 */
export class FakeRunner {
  readonly calls: RunnerCall[] = [];
  private readonly handlers = new Map<string, (args: string[], options: CommandOptions) => string | Promise<string>>();

  respond(file: string, handler: (args: string[], options: CommandOptions) => string | Promise<string>): void {
    this.handlers.set(file, handler);
  }

  readonly run: CommandRunner = async (file, args, options = {}) => {
    const call: RunnerCall = { file, args: [...args] };
    if (options.input !== undefined) call.input = options.input;
    this.calls.push(call);
    const handler = this.handlers.get(file);
    return handler ? handler([...args], options) : '';
  };

  callsOf(file: string): RunnerCall[] {
    return this.calls.filter((c) => c.file === file);
  }
}
