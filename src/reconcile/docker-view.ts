import Docker from 'dockerode';
import type { EngineInfo } from '../docker/api.js';

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
  /** Docker's firewall backend ("iptables", "nftables", ...), undefined before API 1.50. */
  firewallBackend?(): Promise<string | undefined>;
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
    async firewallBackend() {
      const info = (await docker.info()) as EngineInfo;
      return info.FirewallBackend?.Driver;
    },
    async networks() {
      const summaries = await docker.listNetworks();
      const out: DockerNetworkView[] = [];
      for (const summary of summaries) {
        const detail = await docker.getNetwork(summary.Id).inspect();
        const containers = (detail.Containers ?? {}) as Record<string, { Name?: string; EndpointID?: string; IPv4Address?: string; IPv6Address?: string }>;
        out.push({
          id: summary.Id,
          name: summary.Name,
          subnets: (detail.IPAM?.Config ?? []).map((c: { Subnet?: string }) => c.Subnet ?? '').filter(Boolean),
          endpoints: Object.entries(containers)
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

// ---- network admin (conf-dir sync) -----------------------------------------------------

/** A Docker network as the conf-dir sync sees it. */
export interface DockerNetworkSummary {
  id: string;
  name: string;
  driver: string;
  labels: Record<string, string>;
  /** Containers attached now. */
  containers: number;
}

/** What the conf-dir sync asks Docker to create. */
export interface ManagedNetworkSpec {
  name: string;
  driver: string;
  ipamDriver: string;
  subnets: Array<{ subnet: string; gateway?: string }>;
  enableIPv6: boolean;
  options: Record<string, string>;
  ipamOptions: Record<string, string>;
  labels: Record<string, string>;
}

/**
 * The four Docker calls of the conf-dir sync, kept small so another client
 * (a plain unix-socket HTTP one) can replace dockerode here alone. Background
 * use only, never from a request handler.
 */
export interface DockerNetworkAdmin {
  /** Networks carrying `label=value`. */
  listByLabel(label: string, value: string): Promise<DockerNetworkSummary[]>;
  /** The network of exactly this name, or undefined. */
  inspect(name: string): Promise<DockerNetworkSummary | undefined>;
  create(spec: ManagedNetworkSpec): Promise<string>;
  remove(id: string): Promise<void>;
}

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

function summaryOf(detail: { Id: string; Name: string; Driver?: string; Labels?: Record<string, string> | null; Containers?: Record<string, unknown> | null }): DockerNetworkSummary {
  return {
    id: detail.Id,
    name: detail.Name,
    driver: detail.Driver ?? '',
    labels: detail.Labels ?? {},
    containers: Object.keys(detail.Containers ?? {}).length,
  };
}

export function dockerodeNetworkAdmin(socketPath: string, timeoutMs = 30_000): DockerNetworkAdmin {
  const docker = new Docker({ socketPath, timeout: timeoutMs });
  const inspectById = async (idOrName: string): Promise<DockerNetworkSummary | undefined> => {
    try {
      return summaryOf(await docker.getNetwork(idOrName).inspect());
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  };
  return {
    async listByLabel(label, value) {
      const listed = await docker.listNetworks({ filters: JSON.stringify({ label: [`${label}=${value}`] }) });
      const out: DockerNetworkSummary[] = [];
      // The list reply has no containers; inspect each (few: only our own networks).
      for (const summary of listed) {
        const detail = await inspectById(summary.Id);
        if (detail) out.push(detail);
      }
      return out;
    },
    async inspect(name) {
      const found = await inspectById(name);
      // Docker also matches an ID prefix; only an exact name counts here.
      return found && found.name === name ? found : undefined;
    },
    async create(spec) {
      const created = await docker.createNetwork({
        Name: spec.name,
        CheckDuplicate: true,
        Driver: spec.driver,
        EnableIPv6: spec.enableIPv6,
        IPAM: {
          Driver: spec.ipamDriver,
          Config: spec.subnets.map((s) => ({ Subnet: s.subnet, ...(s.gateway ? { Gateway: s.gateway } : {}) })),
          Options: spec.ipamOptions,
        },
        Options: spec.options,
        Labels: spec.labels,
      });
      return created.id;
    },
    async remove(id) {
      try {
        await docker.getNetwork(id).remove();
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    },
  };
}
