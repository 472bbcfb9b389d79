/**
 * Watches for a Docker engine docker-cni cannot isolate networks on: Docker
 * 29's nftables firewall backend has no DOCKER-USER chain, so the per-network
 * rules would sit in FORWARD, where an ACCEPT cannot override Docker's own
 * drop and nothing keeps the two rule sets ordered. Read through the Docker
 * API, hence only at startup and from background passes, never in a request;
 * CreateNetwork consults the last answer.
 */
import { NFTABLES_FIREWALL_BACKEND } from '../docker/api.js';
import { PluginError } from '../errors.js';
import type { Logger } from '../log.js';

export const NFTABLES_BACKEND_MESSAGE =
  "dockerd runs its nftables firewall backend (--firewall-backend=nftables), which has no DOCKER-USER chain: docker-cni cannot isolate its networks there. Start dockerd with --firewall-backend=iptables (the default)";

export class EngineGuard {
  private backend: string | undefined;

  constructor(
    private readonly readBackend: () => Promise<string | undefined>,
    private readonly logger: Logger,
  ) {}

  /** Asks Docker again; an unreachable Docker keeps the last answer. */
  async check(): Promise<void> {
    let backend: string | undefined;
    try {
      backend = await this.readBackend();
    } catch (err) {
      this.logger.debug({ err }, 'firewall backend check: Docker not reachable');
      return;
    }
    if (backend !== this.backend && backend === NFTABLES_FIREWALL_BACKEND) this.logger.error(NFTABLES_BACKEND_MESSAGE);
    this.backend = backend;
  }

  /** Undefined when networks can be created; else why not. */
  problem(): string | undefined {
    return this.backend === NFTABLES_FIREWALL_BACKEND ? NFTABLES_BACKEND_MESSAGE : undefined;
  }

  /** For startup: fails with the message when Docker is known to run the nftables backend. */
  assertSupported(): void {
    const problem = this.problem();
    if (problem) throw new PluginError('INVALID_ARGUMENT', problem);
  }
}
