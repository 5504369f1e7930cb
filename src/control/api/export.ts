// Moving a mesh between stores (the embedded store and etcd, either way): `export` writes every
// resource as stored — its uid, generation and creationTimestamp, which route precedence and VIP
// order read — and the control plane's own documents (VIP allocations, join and admin tokens as
// digests, revoked nodes and certificates); `import` writes them into an empty store in one commit, so the mesh on the
// other side is the same mesh, Services keeping their addresses. (`ambit apply -f` of the items works
// too, as for any resource, but gives them new timestamps and addresses.)

import { isIP } from 'node:net';
import { z } from 'zod';
import {
  CONFIG_INVALID,
  type ConfigIssue,
  invalidConfigError,
  type Resource,
  resourceKey,
  resourceName,
  validateResource,
} from '../../config/index.ts';
import { AmbitError } from '../../errors/index.ts';
import { revocationKey } from '../../identity/index.ts';
import { revokedCertificateEntry } from '../../xds/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import {
  type Change,
  isInternalKey,
  listInternal,
  readInternal,
  type Store,
  type StoredObject,
  writeInternal,
} from '../store/index.ts';
import { ROLES } from './access.ts';

export const MESH_EXPORT_KIND = 'MeshExport';
const API_VERSION = 'ambit.dev/v1alpha1';
const SHA256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 digest (hex)');
/**
 * The control plane's documents an export carries, each checked on import as far as a store can
 * hold it (the code reading each checks the rest as it reads).
 */
const DOCUMENTS = {
  vips: z.record(
    z.string().min(1),
    z.string().refine((ip) => isIP(ip) === 4, 'must be an IPv4 address'),
  ),
  'join-tokens': z.record(
    SHA256,
    z.strictObject({
      node: z.string().min(1),
      expiresAt: z.number().int().nonnegative(),
      state: z.enum(['open', 'used', 'revoked']),
    }),
  ),
  'revoked-nodes': z.array(z.string().min(1)),
  'revoked-certificates': z.array(
    revokedCertificateEntry.extend({ notAfter: z.string().datetime({ offset: true }) }).strict(),
  ),
  'admin-tokens': z.array(
    z.strictObject({
      name: z.string().min(1),
      digest: SHA256,
      role: z.enum(ROLES),
      namespaces: z.array(z.string().min(1)),
      createdAt: z.string().datetime({ offset: true }),
      expiresAt: z.string().datetime({ offset: true }).optional(),
    }),
  ),
};

export interface MeshExport {
  apiVersion: typeof API_VERSION;
  kind: typeof MESH_EXPORT_KIND;
  /** The store revision it was read at. */
  revision: number;
  exportedAt: string;
  /** The control plane's documents by name: `vips` (Service key → VIP), `join-tokens`, `revoked-nodes`, `revoked-certificates`, `admin-tokens`. */
  state: Record<string, unknown>;
  items: StoredObject[];
}

/** Every resource and the VIP table, as the store holds them at one revision. */
export function exportMesh(store: Store): MeshExport {
  const items = store
    .list()
    .filter((r) => !isInternalKey(r.key))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((r) => {
      const { resourceVersion: _rv, ...metadata } = r.object.metadata;
      return { ...r.object, metadata } as StoredObject;
    });
  return {
    apiVersion: API_VERSION,
    kind: MESH_EXPORT_KIND,
    revision: store.revision,
    exportedAt: new Date().toISOString(),
    state: Object.fromEntries(listInternal(store).filter(([name]) => name in DOCUMENTS)),
    items,
  };
}

const envelope = z
  .object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(MESH_EXPORT_KIND),
    revision: z.number().int().nonnegative().optional(),
    exportedAt: z.string().optional(),
    state: z.object(DOCUMENTS).partial().strict().optional(),
    items: z.array(z.unknown()).max(100_000),
  })
  .strict();

const serverFields = z.object({
  uid: z.string().min(1).max(128),
  generation: z.number().int().positive(),
  creationTimestamp: z.string().datetime({ offset: true }),
});

/**
 * A document as imported into a store that may hold its own already (the admin token the import was
 * made with, a VIP table from an empty first derivation): the VIP table is the export's; tokens and
 * revoked nodes are both sides', this store's winning where a name or digest is on both.
 */
function merged(name: keyof typeof DOCUMENTS, here: unknown, imported: unknown): unknown {
  if (name === 'vips' || here === undefined) return imported;
  if (name === 'revoked-nodes') return [...new Set([...(imported as string[]), ...(here as string[])])];
  if (name === 'revoked-certificates') {
    const key = (e: { serial: string; issuer: string }) => revocationKey(e.issuer, e.serial);
    const mine = here as Array<{ serial: string; issuer: string }>;
    const have = new Set(mine.map(key));
    return [...mine, ...(imported as typeof mine).filter((e) => !have.has(key(e)))];
  }
  if (name === 'admin-tokens') {
    const mine = here as Array<{ name: string }>;
    const names = new Set(mine.map((t) => t.name));
    return [...mine, ...(imported as Array<{ name: string }>).filter((t) => !names.has(t.name))];
  }
  return { ...(imported as object), ...(here as object) };
}

/**
 * Writes an export into `store`, which must hold no resource yet; every item is validated as an apply
 * validates it and must carry the fields the store gave it. Nothing is written unless all are valid.
 */
export async function importMesh(store: Store, body: unknown): Promise<{ imported: number }> {
  const parsed = envelope.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new AmbitError(
      CONFIG_INVALID,
      `not a mesh export (${MESH_EXPORT_KIND}, as \`ambit control export\` writes it): ${problems.join('; ')}`,
    );
  }
  const errors: ConfigIssue[] = [];
  const changes: Change[] = [];
  const seen = new Set<string>();
  parsed.data.items.forEach((item, i) => {
    const where = `item ${i + 1}`;
    const result = validateResource(item, where);
    if (!result.ok) {
      errors.push(...result.errors);
      return;
    }
    const resource: Resource = result.resource;
    const base = { kind: resource.kind, name: resourceName(resource) };
    const server = serverFields.safeParse(resource.metadata);
    if (!server.success) {
      for (const issue of server.error.issues)
        errors.push({
          ...base,
          path: `metadata.${issue.path.join('.')}`,
          message: `${issue.message} (${where})`,
        });
      return;
    }
    const key = resourceKey(resource);
    if (seen.has(key)) {
      errors.push({ ...base, path: 'metadata.name', message: `appears twice in the export (${where})` });
      return;
    }
    seen.add(key);
    const object = {
      ...resource,
      metadata: { ...resource.metadata, resourceVersion: '' },
      status: { conditions: result.conditions },
    } as StoredObject;
    changes.push({ op: 'put', resource: { key, rev: 0, object } });
  });
  if (errors.length > 0) throw invalidConfigError(errors.slice(0, 100), Math.max(0, errors.length - 100));
  await store.commit((current) => {
    const held = current.list().filter((r) => !isInternalKey(r.key)).length;
    if (held > 0)
      throw new AmbitError(
        CONTROL_ERRORS.IMPORT_NOT_EMPTY,
        `import writes into an empty store, and this one holds ${held} resources: start this control plane on a new data directory or etcd prefix, or use \`ambit apply -f\` to add to it`,
      );
    const state = Object.entries(parsed.data.state ?? {}).map(([name, value]) =>
      writeInternal(name, merged(name as keyof typeof DOCUMENTS, readInternal(current, name), value)),
    );
    return [...changes, ...state];
  });
  return { imported: changes.length };
}
