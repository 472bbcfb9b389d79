import { DockerId, type EngineInfo } from '../docker/api.js';
import { DockerApiError, dockerHttp } from './docker-http.js';

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
    async firewallBackend() {
      const info = ((await docker.call('GET', '/info')) ?? {}) as EngineInfo;
      return info.FirewallBackend?.Driver;
    },
    async networks() {
      const summaries = await docker.call('GET', '/networks');
      const out: DockerNetworkView[] = [];
      for (const summary of Array.isArray(summaries) ? (summaries as NetworkSummary[]) : []) {
        // Swarm-scoped networks have 25-character base-36 IDs, not 64 hex: a network skipped here would look
        // gone to the reconciler, which would then remove it. The ID shape Docker sends the driver is the one accepted.
        if (typeof summary.Id !== 'string' || !DockerId.safeParse(summary.Id).success) continue;
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

/** The four Docker calls of the conf-dir sync. Background use only, never from a request handler. */
export interface DockerNetworkAdmin {
  /** Networks carrying `label=value`. */
  listByLabel(label: string, value: string): Promise<DockerNetworkSummary[]>;
  /** The network of exactly this name, or undefined. */
  inspect(name: string): Promise<DockerNetworkSummary | undefined>;
  create(spec: ManagedNetworkSpec): Promise<string>;
  remove(id: string): Promise<void>;
}

interface NetworkInspect {
  Id?: unknown;
  Name?: unknown;
  Driver?: unknown;
  Labels?: Record<string, string> | null;
  Containers?: Record<string, unknown> | null;
}

function summaryOf(detail: NetworkInspect): DockerNetworkSummary {
  return {
    id: typeof detail.Id === 'string' ? detail.Id : '',
    name: typeof detail.Name === 'string' ? detail.Name : '',
    driver: typeof detail.Driver === 'string' ? detail.Driver : '',
    labels: detail.Labels ?? {},
    containers: Object.keys(detail.Containers ?? {}).length,
  };
}

const isMissing = (err: unknown): boolean => err instanceof DockerApiError && err.status === 404;

export function dockerNetworkAdmin(socketPath: string, timeoutMs = 30_000): DockerNetworkAdmin {
  const docker = dockerHttp(socketPath, timeoutMs);
  const inspectByIdOrName = async (idOrName: string): Promise<DockerNetworkSummary | undefined> => {
    try {
      return summaryOf(((await docker.call('GET', `/networks/${encodeURIComponent(idOrName)}`)) ?? {}));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  };
  return {
    async listByLabel(label, value) {
      const filters = encodeURIComponent(JSON.stringify({ label: [`${label}=${value}`] }));
      const listed = await docker.call('GET', `/networks?filters=${filters}`);
      const out: DockerNetworkSummary[] = [];
      // The list reply has no containers; inspect each (few: only our own networks).
      for (const summary of Array.isArray(listed) ? (listed as NetworkInspect[]) : []) {
        if (typeof summary.Id !== 'string') continue;
        const detail = await inspectByIdOrName(summary.Id);
        if (detail) out.push(detail);
      }
      return out;
    },
    async inspect(name) {
      const found = await inspectByIdOrName(name);
      // Docker also matches an ID prefix; only an exact name counts here.
      return found && found.name === name ? found : undefined;
    },
    async create(spec) {
      const created = (await docker.call('POST', '/networks/create', {
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
      })) as { Id?: unknown } | undefined;
      return typeof created?.Id === 'string' ? created.Id : '';
    },
    async remove(id) {
      try {
        await docker.call('DELETE', `/networks/${encodeURIComponent(id)}`);
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    },
  };
}
