import { dockerHttp } from './docker-http.js';

/** What reconciliation needs to know from Docker. */
export interface DockerNetworkView {
  id: string;
  name: string;
  subnets: string[];
  /** Endpoint IDs and addresses (bare IPs) of attached containers, and the containers (for the CLI). */
  endpoints: Array<{ id: string; addresses: string[]; containerId?: string; containerName?: string }>;
}

export interface DockerView {
  networks(): Promise<DockerNetworkView[]>;
}

const bareIp = (cidr: string | undefined): string | undefined => (cidr ? cidr.split('/')[0] : undefined);

interface NetworkSummary {
  Id?: unknown;
  Name?: unknown;
}

interface NetworkDetail {
  IPAM?: { Config?: Array<{ Subnet?: string }> | null } | null;
  Containers?: Record<string, { Name?: string; EndpointID?: string; IPv4Address?: string; IPv6Address?: string }> | null;
}

/**
 * Reads Docker's networks through its API (GET /networks, GET /networks/{id}).
 * Only for background reconciliation and the CLI: a request handler must never
 * call Docker (dockerd waits on its plugins while starting, so such a call can deadlock).
 */
export function dockerApiView(socketPath: string, timeoutMs = 10_000): DockerView {
  const docker = dockerHttp(socketPath, timeoutMs);
  return {
    async networks() {
      const summaries = await docker.call('GET', '/networks');
      const out: DockerNetworkView[] = [];
      for (const summary of Array.isArray(summaries) ? (summaries as NetworkSummary[]) : []) {
        if (typeof summary.Id !== 'string' || !/^[0-9a-f]{1,64}$/.test(summary.Id)) continue;
        const detail = ((await docker.call('GET', `/networks/${summary.Id}`)) ?? {}) as NetworkDetail;
        out.push({
          id: summary.Id,
          name: typeof summary.Name === 'string' ? summary.Name : '',
          subnets: (detail.IPAM?.Config ?? []).map((c) => c.Subnet ?? '').filter(Boolean),
          endpoints: Object.entries(detail.Containers ?? {})
            .filter(([, c]) => c.EndpointID)
            .map(([containerId, c]) => ({
              id: c.EndpointID as string,
              addresses: [bareIp(c.IPv4Address), bareIp(c.IPv6Address)].filter((a): a is string => !!a),
              containerId,
              containerName: c.Name ?? '',
            })),
        });
      }
      return out;
    },
  };
}
