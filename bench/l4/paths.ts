// The three paths the L4 benchmark compares on the same traffic: plain TCP, the two ztunnels (HBONE
// mTLS) and the HAProxy mTLS pair.

export const PATHS = ['direct', 'ztunnel', 'haproxy'] as const;
export type PathName = (typeof PATHS)[number];

/** How the table names each path. */
export const PATH_LABEL: Record<PathName, string> = {
  direct: 'direct',
  ztunnel: '2 ztunnels',
  haproxy: 'HAProxy pair',
};
