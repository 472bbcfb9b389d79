/**
 * Names the cluster layer derives, defined once (moved into src/names.ts once
 * that file exists on this branch's base).
 */

/** The routing protocol number tagging every route docker-cni installs, so `ip route show proto 218` lists exactly ours. */
export const ROUTE_PROTO = '218';

/** CNI/Docker option keys of the multi-host modes. */
export const CLUSTER_OPTS = {
  /** IPAM option: take this pool from the cluster IPAM (etcd). */
  ipamCluster: 'cni.cluster',
  /** Network option: the data path, `l2` or `routed`. */
  mode: 'cni.cluster.mode',
  /** Network option: the underlay interface macvlan sits on (l2 mode). */
  underlay: 'cni.cluster.underlay',
} as const;

export type ClusterMode = 'l2' | 'routed';
