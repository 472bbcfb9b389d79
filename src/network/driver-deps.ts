/** What the network driver needs from the outside world; wiring.ts passes the real ones, unit tests fakes. */
import type { CniResult, NetConfList, RuntimeConf } from '../cni/types.js';
import type { NetworkFirewallSpec } from '../host/firewall.js';
import type { PortProbe } from '../host/ports.js';
import type { StagingLease } from '../host/staging-netns.js';
import type { Logger } from '../log.js';
import type { Store } from '../state/store.js';
import type { EndpointRecord, NetworkRecord } from './records.js';

/** libcni's chain operations, as the driver needs them. */
export interface CniChainRunner {
  addNetworkList(list: NetConfList, rt: RuntimeConf, opts?: { prevResult?: CniResult }): Promise<CniResult>;
  delNetworkList(list: NetConfList | undefined, rt: RuntimeConf): Promise<void>;
}

export interface NetworkDriverDeps {
  networks: Store<NetworkRecord>;
  endpoints: Store<EndpointRecord>;
  cni: CniChainRunner;
  /** Finds a user conflist by name in the conf dir (NOT_FOUND if absent). */
  loadConfList(name: string): Promise<NetConfList>;
  /** Resolves a plugin binary (NOT_FOUND if absent), to fail network creation early. */
  locatePlugin(type: string): Promise<string>;
  staging: {
    acquire(): Promise<StagingLease>;
    release(lease: StagingLease, dirty?: boolean): void;
    listExisting(): Promise<string[]>;
    /** A namespace in which nothing is ever made, shared by DELs that need no link back; never leased. */
    empty?(): Promise<StagingLease>;
  };
  links: {
    exists(name: string): Promise<boolean>;
    moveToHost(netnsName: string, ifName: string, hostName: string): Promise<void>;
    moveToNetns(hostName: string, netnsName: string, ifName: string): Promise<void>;
    addAddresses(netnsName: string, ifName: string, cidrs: readonly string[]): Promise<void>;
    deleteIfExists(name: string): Promise<void>;
  };
  firewall: {
    ensureNetwork(spec: NetworkFirewallSpec): Promise<void>;
    removeNetwork(networkId: string): Promise<void>;
  };
  /** Bridges of user conflists: noted before the first ADD, removed after the last network if docker-cni made them. */
  conflistBridges?: {
    beforeAdd(bridge: string): Promise<void>;
    afterLastNetwork(bridge: string): Promise<void>;
  };
  probePort: PortProbe;
  /** Why networks cannot be created on this engine (Docker's nftables backend), if so. */
  engineProblem?: () => string | undefined;
  logger: Logger;
  /** Answer DeleteEndpoint once `deleting` is journaled and finish the teardown after (see teardowns.ts). */
  backgroundTeardown?: boolean;
  /** Answer CreateEndpoint once `creating` is journaled and run the chain after; Join waits for it (see setups.ts). */
  backgroundSetup?: boolean;
  /** The multi-host layer (src/cluster/), present when etcd is configured. */
  cluster?: ClusterHooks;
}

/** What the driver tells the multi-host layer; the layer itself stays out of the driver. */
export interface ClusterHooks {
  /** Routed networks changed: keep routes to other hosts' blocks of these subnets. */
  routedSubnetsChanged(subnets: string[]): void;
  /** After a routed network's chain ran: the bridge exists now and answers ARP for remote blocks. */
  bridgeReady(bridge: string): Promise<void>;
}
