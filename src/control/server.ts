// `ambit control`: one process holding the store, the admin API (15014, plus a Unix socket in the
// data directory for the local CLI) and, as they are added, the CA and the config stream (15010).

import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { AmbitError } from '../errors/index.ts';
import { logger } from '../log/index.ts';
import { AdminServer, type View } from './api/admin.ts';
import { ResourceApi } from './api/resources.ts';
import { EmbeddedStore, type Store } from './store/index.ts';

const log = logger('control');

export interface ControlOptions {
  dataDir: string;
  /** `host:port` for the admin API; default 127.0.0.1:15014 (it has no authentication: keep it local). */
  adminListen?: string;
  /** Also serve the admin API on this Unix socket; default `<dataDir>/admin.sock`. Empty string: none. */
  adminSocket?: string;
}

export interface ControlPlane {
  store: Store;
  api: ResourceApi;
  /** Where the admin API listens, as `host:port`. */
  adminAddress: string;
  adminSocket: string | undefined;
  close(): Promise<void>;
}

export async function startControlPlane(opts: ControlOptions): Promise<ControlPlane> {
  const store = await EmbeddedStore.open(join(opts.dataDir, 'store'));
  const api = new ResourceApi(store);
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const views: Record<string, View> = {};
  const admin = new AdminServer({ api, views, metrics });
  let adminAddress: string;
  let adminSocket: string | undefined;
  try {
    adminAddress = await admin.listen(parseListen(opts.adminListen ?? '127.0.0.1:15014', '--admin-listen'));
    adminSocket =
      opts.adminSocket === '' ? undefined : (opts.adminSocket ?? join(opts.dataDir, 'admin.sock'));
    if (adminSocket) await admin.listen({ path: adminSocket });
  } catch (err) {
    await admin.close();
    await store.close();
    throw err;
  }
  log.info({ adminAddress, adminSocket, revision: store.revision }, 'control plane ready');
  return {
    store,
    api,
    adminAddress,
    adminSocket,
    async close() {
      await admin.close();
      await store.close();
    },
  };
}

/** `host:port` (IPv6 as `[::1]:15014`) into its parts; a clear error names the flag. */
export function parseListen(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) {
    throw new AmbitError(
      'AMBIT_ERR_CONTROL_BAD_LISTEN',
      `${flag} "${text}" is not host:port (for example 127.0.0.1:15014)`,
    );
  }
  return { host: m[1] ?? m[2]!, port };
}
