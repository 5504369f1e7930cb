// Bearer tokens for the admin API's TCP listener, each with a role (cluster-admin, or edit/view in
// named namespaces). As with join tokens, only SHA-256 digests are kept, in `admin-tokens.json` in the
// data directory (0600, replaced atomically); a token is shown once, when it is created.

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { AmbitError } from '../../errors/index.ts';
import { digest, readJsonIfPresent, writeJsonAtomic } from '../ca/tokens.ts';
import { CONTROL_ERRORS } from '../errors.ts';
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

export class AdminTokens {
  private readonly byName = new Map<string, TokenRecord>();
  private readonly byDigest = new Map<string, TokenRecord>();
  private readonly file: string | undefined;
  private readonly now: () => number;

  constructor(options: { file?: string; now?: () => number } = {}) {
    this.file = options.file;
    this.now = options.now ?? Date.now;
    if (this.file) this.load(this.file);
  }

  /** Creates a token from an API body (validated: 422 with the field path); the secret is returned only here. */
  create(body: unknown): AdminTokenInfo & { token: string } {
    const req = validateBody(createRequest, body);
    const name = req.name ?? `${req.role}-${randomBytes(3).toString('hex')}`;
    if (this.byName.has(name)) {
      throw new AmbitError(
        CONTROL_ERRORS.API_ALREADY_EXISTS,
        `an admin token named "${name}" already exists; revoke it first or pick another name`,
      );
    }
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
    this.put(record);
    this.save();
    return { ...info(record), token };
  }

  /** Every unexpired token, without secrets, by name. */
  list(): AdminTokenInfo[] {
    this.prune();
    return [...this.byName.values()].map(info).sort((a, b) => a.name.localeCompare(b.name));
  }

  revoke(name: string): AdminTokenInfo {
    const record = this.byName.get(name);
    if (!record) throw new AmbitError(CONTROL_ERRORS.API_NOT_FOUND, `admin token "${name}" not found`);
    this.byName.delete(name);
    this.byDigest.delete(record.digest);
    this.save();
    return info(record);
  }

  /** The principal a bearer token stands for; undefined when it is unknown, revoked or expired. */
  authenticate(token: string): Principal | undefined {
    const record = this.byDigest.get(digest(token));
    if (!record || this.expired(record)) return undefined;
    return { user: `token:${record.name}`, role: record.role, namespaces: record.namespaces };
  }

  private expired(r: TokenRecord): boolean {
    return r.expiresAt !== undefined && Date.parse(r.expiresAt) <= this.now();
  }

  private put(r: TokenRecord): void {
    this.byName.set(r.name, r);
    this.byDigest.set(r.digest, r);
  }

  private prune(): void {
    let changed = false;
    for (const r of this.byName.values()) {
      if (!this.expired(r)) continue;
      this.byName.delete(r.name);
      this.byDigest.delete(r.digest);
      changed = true;
    }
    if (changed) this.save();
  }

  private load(file: string): void {
    const parsed = readJsonIfPresent(
      file,
      (cause) =>
        new AmbitError(
          CONTROL_ERRORS.API_TOKENS_UNREADABLE,
          `the admin token file ${file} is unreadable; move it aside to start without admin tokens`,
          { cause },
        ),
    );
    if (parsed === undefined) return;
    const records = z.array(recordSchema).safeParse(parsed);
    if (!records.success) {
      throw new AmbitError(
        CONTROL_ERRORS.API_TOKENS_UNREADABLE,
        `the admin token file ${file} is not a list of token records; move it aside to start without admin tokens`,
      );
    }
    for (const r of records.data) if (!this.expired(r)) this.put(r);
  }

  private save(): void {
    if (this.file) writeJsonAtomic(this.file, [...this.byName.values()]);
  }
}

function info(r: TokenRecord): AdminTokenInfo {
  const { digest: _, ...rest } = r;
  return { ...rest, namespaces: [...rest.namespaces] };
}
