// Bearer tokens for the admin API's TCP listener, each with a role (cluster-admin, or edit/view in
// named namespaces). As with join tokens, only SHA-256 digests are kept, as a document in the store that
// every replica shares (a token created on one works on all, and a revocation holds on all); a token is
// shown once, when it is created.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { AmbitError } from '../../errors/index.ts';
import { digest } from '../ca/tokens.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { SharedDocument } from '../shared-document.ts';
import type { Store } from '../store/index.ts';
import { type Principal, ROLES, type Role } from './access.ts';
import { validateBody } from './json-body.ts';

const PREFIX = 'ambit-admin-';
/** Ten years: longer is a typo, and keeps every expiry a valid date. */
export const MAX_ADMIN_TOKEN_TTL_SECONDS = 10 * 365 * 24 * 3600;

export interface AdminTokenInfo {
  name: string;
  role: Role;
  namespaces: string[];
  createdAt: string;
  /** Undefined: valid until revoked. */
  expiresAt?: string;
}

interface TokenRecord extends AdminTokenInfo {
  digest: string;
}

const dnsLabel = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and -');

/** The body of `POST /ambit/v1/admin-tokens`. */
export const createRequest = z
  .object({
    name: dnsLabel.optional(),
    role: z.enum(ROLES),
    namespaces: z.array(dnsLabel).max(256).optional(),
    ttlSeconds: z.number().int().min(1).max(MAX_ADMIN_TOKEN_TTL_SECONDS).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    const count = r.namespaces?.length ?? 0;
    if (r.role === 'cluster-admin' && count > 0)
      ctx.addIssue({
        code: 'custom',
        path: ['namespaces'],
        message: 'cluster-admin applies everywhere: give no namespaces',
      });
    if (r.role !== 'cluster-admin' && count === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['namespaces'],
        message: `role ${r.role} needs at least one namespace`,
      });
  });

const recordSchema = z.object({
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  role: z.enum(ROLES),
  namespaces: z.array(z.string()),
  createdAt: z.string(),
  expiresAt: z.string().optional(),
});

const DOCUMENT = 'admin-tokens';

export class AdminTokens {
  private readonly doc: SharedDocument<TokenRecord[]>;
  private readonly now: () => number;
  /** The records by digest, for the document the store holds (rebuilt when it changes). */
  private index: { records: TokenRecord[] | undefined; byDigest: Map<string, TokenRecord> } | undefined;

  constructor(options: { store: Store; now?: () => number }) {
    this.doc = new SharedDocument(options.store, DOCUMENT);
    this.now = options.now ?? Date.now;
  }

  /** Takes over the token file an older control plane kept (`admin-tokens.json`), once. */
  takeOver(file: string): Promise<void> {
    const parse = (json: unknown) => {
      const records = z.array(recordSchema).safeParse(json);
      if (records.success) return records.data;
      throw new AmbitError(
        CONTROL_ERRORS.API_TOKENS_UNREADABLE,
        `the admin token file ${file} is not a list of token records; move it aside to start without admin tokens`,
      );
    };
    const unreadable = (cause: unknown) =>
      new AmbitError(
        CONTROL_ERRORS.API_TOKENS_UNREADABLE,
        `the admin token file ${file} is unreadable; move it aside to start without admin tokens`,
        { cause },
      );
    return this.doc.takeOver(file, (json) => this.live(parse(json)), unreadable);
  }

  /** Creates a token from an API body (validated: 422 with the field path); the secret is returned only here. */
  async create(body: unknown): Promise<AdminTokenInfo & { token: string }> {
    const req = validateBody(createRequest, body);
    const name = req.name ?? `${req.role}-${randomBytes(3).toString('hex')}`;
    const token = PREFIX + randomBytes(32).toString('base64url');
    const now = this.now();
    const record: TokenRecord = {
      digest: digest(token),
      name,
      role: req.role,
      namespaces: [...new Set(req.namespaces ?? [])].sort(),
      createdAt: new Date(now).toISOString(),
      ...(req.ttlSeconds !== undefined
        ? { expiresAt: new Date(now + req.ttlSeconds * 1000).toISOString() }
        : {}),
    };
    await this.doc.update((records = []) => {
      const live = this.live(records);
      if (live.some((r) => r.name === name)) {
        throw new AmbitError(
          CONTROL_ERRORS.API_ALREADY_EXISTS,
          `an admin token named "${name}" already exists; revoke it first or pick another name`,
        );
      }
      return [...live, record];
    });
    return { ...info(record), token };
  }

  /** Every unexpired token, without secrets, by name. */
  list(): AdminTokenInfo[] {
    return this.live(this.doc.read() ?? [])
      .map(info)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async revoke(name: string): Promise<AdminTokenInfo> {
    let revoked: TokenRecord | undefined;
    await this.doc.update((records = []) => {
      const live = this.live(records);
      revoked = live.find((r) => r.name === name);
      if (!revoked) throw new AmbitError(CONTROL_ERRORS.API_NOT_FOUND, `admin token "${name}" not found`);
      return live.filter((r) => r !== revoked);
    });
    return info(revoked!);
  }

  /** The principal a bearer token stands for; undefined when it is unknown, revoked or expired. */
  authenticate(token: string): Principal | undefined {
    const record = this.byDigest().get(digest(token));
    if (!record || this.expired(record)) return undefined;
    return { user: `token:${record.name}`, role: record.role, namespaces: record.namespaces };
  }

  private byDigest(): Map<string, TokenRecord> {
    const records = this.doc.read();
    if (this.index && this.index.records === records) return this.index.byDigest;
    const byDigest = new Map((records ?? []).map((r) => [r.digest, r]));
    this.index = { records, byDigest };
    return byDigest;
  }

  private expired(r: TokenRecord): boolean {
    return r.expiresAt !== undefined && Date.parse(r.expiresAt) <= this.now();
  }

  /** Expired tokens leave the document whenever it is written. */
  private live(records: TokenRecord[]): TokenRecord[] {
    return records.filter((r) => !this.expired(r));
  }
}

function info(r: TokenRecord): AdminTokenInfo {
  const { digest: _, ...rest } = r;
  return { ...rest, namespaces: [...rest.namespaces] };
}
