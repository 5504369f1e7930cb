// The control plane's config file (`ambit control --config FILE`): YAML with the same settings as the
// flags. Unknown keys and bad values are refused with the file and the key named.

import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { cidr } from '../config/index.ts';
import { AmbitError } from '../errors/index.ts';
import { CONTROL_ERRORS } from './errors.ts';
import { REPLICA_NAME, REPLICA_NAME_RULE } from './store/index.ts';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):[0-9]{1,5}$/, 'must be host:port, for example 127.0.0.1:15014')
  .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, 'the port must be at most 65535');

const schema = z
  .object({
    dataDir: z.string().min(1).optional(),
    adminListen: hostPort.optional(),
    adminListenAllowRemote: z.boolean().optional(),
    adminMaxWatches: z.number().int().min(1).max(100_000).optional(),
    adminSocket: z.string().optional(),
    grpcListen: hostPort.optional(),
    trustDomain: z.string().min(1).optional(),
    rootNamespace: z.string().min(1).optional(),
    labState: z.string().min(1).optional(),
    reservedCidrs: z.array(cidr).optional(),
    dnsListen: hostPort.optional(),
    dnsUpstream: z.string().min(1).optional(),
    store: z.enum(['embedded', 'etcd']).optional(),
    etcdEndpoints: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    etcdPrefix: z.string().min(1).optional(),
    etcdCa: z.string().min(1).optional(),
    etcdCert: z.string().min(1).optional(),
    etcdKey: z.string().min(1).optional(),
    etcdMaxTxnOps: z.number().int().min(2).max(1_000_000).optional(),
    replicaName: z.string().regex(REPLICA_NAME, REPLICA_NAME_RULE).optional(),
    vipRange: z
      .string()
      .regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, 'must be an IPv4 CIDR such as 198.19.0.0/16')
      .optional(),
  })
  .strict();

export type ControlConfigFile = z.infer<typeof schema>;

export async function loadControlConfig(path: string): Promise<ControlConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new AmbitError(
      CONTROL_ERRORS.CONFIG,
      `cannot read the config file ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
  let value: unknown;
  try {
    value = parse(text) ?? {};
  } catch (cause) {
    throw new AmbitError(
      CONTROL_ERRORS.CONFIG,
      `${path} is not valid YAML: ${(cause as Error).message.split('\n')[0]}`,
      { cause },
    );
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const problems = r.error.issues
      .map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`)
      .join('; ');
    throw new AmbitError(CONTROL_ERRORS.CONFIG, `${path}: ${problems}`);
  }
  return r.data;
}
