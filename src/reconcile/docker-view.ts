import Docker from 'dockerode';

/** What reconciliation needs to know from Docker. */
export interface DockerNetworkView {
  id: string;
  name: string;
  subnets: string[];
  /** Endpoint IDs and addresses (bare IPs) of attached containers. */
  endpoints: Array<{ id: string; addresses: string[]; container?: string }>;
}

export interface DockerView {
  networks(): Promise<DockerNetworkView[]>;
}

const bareIp = (cidr: string | undefined): string | undefined => (cidr ? cidr.split('/')[0] : undefined);

/**
 * Reads Docker's networks through its API. Only for background reconciliation
 * and the CLI: a request handler must never call Docker (dockerd waits on its
 * plugins while starting, so such a call can deadlock).
 */
export function dockerodeView(socketPath: string, timeoutMs = 10_000): DockerView {
  const docker = new Docker({ socketPath, timeout: timeoutMs });
  return {
    async networks() {
      const summaries = await docker.listNetworks();
      const out: DockerNetworkView[] = [];
      for (const summary of summaries) {
        const detail = await docker.getNetwork(summary.Id).inspect();
        const containers = (detail.Containers ?? {}) as Record<string, { EndpointID?: string; Name?: string; IPv4Address?: string; IPv6Address?: string }>;
        out.push({
          id: summary.Id,
          name: summary.Name,
          subnets: (detail.IPAM?.Config ?? []).map((c: { Subnet?: string }) => c.Subnet ?? '').filter(Boolean),
          endpoints: Object.values(containers)
            .filter((c) => c.EndpointID)
            .map((c) => ({
              id: c.EndpointID as string,
              addresses: [bareIp(c.IPv4Address), bareIp(c.IPv6Address)].filter((a): a is string => !!a),
              ...(c.Name ? { container: c.Name } : {}),
            })),
        });
      }
      return out;
    },
  };
}
