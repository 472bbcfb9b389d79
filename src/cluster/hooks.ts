/** The network driver's view of the multi-host layer (ClusterHooks), built on a running cluster runtime. */
import type { ClusterHooks } from '../network/driver-deps.js';
import { clusterPoolId } from './keys.js';
import { enableProxyArp } from './proxy-arp.js';
import type { ClusterRuntime } from './runtime.js';

export function clusterHooks(runtime: ClusterRuntime): ClusterHooks {
  return {
    routedSubnetsChanged(subnets) {
      // Off the request path: RouteSync retries a failed resync itself.
      runtime.routes.setPools(subnets.map(clusterPoolId)).catch((err: unknown) => runtime.log.warn({ err }, 'cluster: route resync failed'));
    },
    bridgeReady: (bridge) => enableProxyArp(bridge),
  };
}
