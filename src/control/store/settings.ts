// Which store a control plane keeps its resources in, as flags and the config file give it: the
// embedded store in its data directory (the default), or etcd. Everything is checked before anything
// starts, and each problem names the flag (or config key) it came from.

import { readFile } from 'node:fs/promises';
import { AmbitError, describeError } from '../../errors/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import type { EtcdStoreOptions } from './etcd.ts';

/** Where the store's keys live in etcd unless told otherwise. */
export const DEFAULT_ETCD_PREFIX = '/ambit';

export type StoreKind = 'embedded' | 'etcd';

/** The store settings as given (flags or config file), before files are read. */
export interface StoreSettings {
  store?: StoreKind;
  /** Comma-separated, or a list. */
  etcdEndpoints?: string | string[];
  etcdPrefix?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  /** Operations the members take in one transaction (their --max-txn-ops). */
  etcdMaxTxnOps?: number;
}

export type StoreChoice = { kind: 'embedded' } | { kind: 'etcd'; etcd: EtcdStoreOptions };

const bad = (message: string) => new AmbitError(CONTROL_ERRORS.CONFIG, message);

/** A client URL of an etcd member: http(s)://host:port, nothing after the port. */
function endpoint(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(`--etcd-endpoints: "${text}" is not a URL such as http://127.0.0.1:2379`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.port === '' || url.pathname !== '/')
    throw bad(`--etcd-endpoints: "${text}" must be http://host:port or https://host:port`);
  return `${url.protocol}//${url.host}`;
}

/** Checks the settings and reads the TLS files: what `startControlPlane` opens. */
export async function storeChoice(s: StoreSettings): Promise<StoreChoice> {
  const etcdGiven = [s.etcdEndpoints, s.etcdPrefix, s.etcdCa, s.etcdCert, s.etcdKey, s.etcdMaxTxnOps].some(
    (v) => v !== undefined,
  );
  if ((s.store ?? 'embedded') === 'embedded') {
    if (etcdGiven) throw bad('the --etcd-* settings need --store etcd');
    return { kind: 'embedded' };
  }
  const list = Array.isArray(s.etcdEndpoints) ? s.etcdEndpoints : (s.etcdEndpoints ?? '').split(',');
  const endpoints = list.map((e) => e.trim()).filter((e) => e !== '');
  if (endpoints.length === 0) throw bad('--store etcd needs --etcd-endpoints URL,…');
  const urls = endpoints.map(endpoint);
  const secure = urls.filter((u) => u.startsWith('https:'));
  if (secure.length > 0 && secure.length < urls.length)
    throw bad('--etcd-endpoints: give every member as https://, or every one as http://');
  const prefix = s.etcdPrefix ?? DEFAULT_ETCD_PREFIX;
  if (!/^\/[A-Za-z0-9._/-]*$/.test(prefix) || prefix.includes('//'))
    throw bad(`--etcd-prefix "${prefix}" must start with / and hold only letters, digits and . _ - /`);
  if ((s.etcdCert === undefined) !== (s.etcdKey === undefined))
    throw bad('--etcd-cert and --etcd-key go together: give both, or neither');
  if (secure.length === 0 && (s.etcdCa || s.etcdCert))
    throw bad('--etcd-ca, --etcd-cert and --etcd-key are for https:// endpoints');
  if (secure.length > 0 && s.etcdCa === undefined)
    throw bad('https:// etcd endpoints need --etcd-ca, the CA that signed the members');
  const read = async (path: string | undefined, flag: string) => {
    if (path === undefined) return undefined;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw bad(`${flag} ${path}: ${describeError(err)}`);
    }
    if (!text.includes('-----BEGIN ')) throw bad(`${flag} ${path} holds no PEM block`);
    return text;
  };
  const [caPem, certPem, keyPem] = await Promise.all([
    read(s.etcdCa, '--etcd-ca'),
    read(s.etcdCert, '--etcd-cert'),
    read(s.etcdKey, '--etcd-key'),
  ]);
  const max = s.etcdMaxTxnOps;
  if (max !== undefined && (!Number.isInteger(max) || max < 2 || max > 1_000_000))
    throw bad(`--etcd-max-txn-ops must be a whole number from 2 to 1000000, got ${max}`);
  return {
    kind: 'etcd',
    etcd: {
      endpoints: urls,
      prefix,
      ...(max !== undefined ? { maxTxnOps: max } : {}),
      ...(caPem !== undefined
        ? { tls: { caPem, ...(certPem ? { certPem } : {}), ...(keyPem ? { keyPem } : {}) } }
        : {}),
    },
  };
}
