// The CSR service's decisions, free of any transport: a node joins with a token and gets a node credential;
// a joined node gets workload certificates only for identities placed on it (the impersonation check).
// Revoked nodes are a document in the store: a revocation made on one replica holds on every replica.
// So are the certificates revoked with them: each replica adds what it issued to a revoked node, and the
// revocation list every replica publishes is the shared one, whichever replica a proxy listens to.

import { AmbitError } from '../../errors/index.ts';
import {
  nodeId,
  type RevokedCertificate,
  revocationKey,
  type SpiffeId,
  SYSTEM_NAMESPACE,
} from '../../identity/index.ts';
import { logger } from '../../log/index.ts';
import { revokedCertificateEntry } from '../../xds/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import { SharedDocument } from '../shared-document.ts';
import type { Store } from '../store/index.ts';
import type { CertificateAuthority, IssuedCertificate } from './authority.ts';
import type { IssuedCertificates } from './issued.ts';
import type { WorkloadPlacement } from './placement.ts';
import type { JoinTokens } from './tokens.ts';

export interface CaServiceOptions {
  ca: CertificateAuthority;
  tokens: JoinTokens;
  placement: WorkloadPlacement;
  /** Where revoked nodes are kept (the store every replica shares), so a revocation holds everywhere. */
  store: Store;
  /** Lifetime of node credentials; a node renews its own before expiry like any certificate. */
  nodeCertTtlSeconds?: number;
  /** Records what each node was issued, so revoking the node revokes its certificates (issued.ts). */
  issued?: IssuedCertificates;
  /**
   * Called after the revoked nodes changed, on whichever replica: `revoked` are the nodes newly revoked
   * (their streams end), others may have rejoined (the registry takes workloads out or back in).
   */
  onRevokedChange?: (revoked: readonly string[]) => void;
}

const REVOKED = 'revoked-nodes';
const REVOKED_CERTIFICATES = 'revoked-certificates';
/** How soon revoking a node's certificates is tried again after it failed (e.g. a full disk). */
const RETRY_REVOKE_MS = 10_000;

const log = logger('ca');

export interface JoinResult {
  node: string;
  issued: IssuedCertificate;
  /** PEM roots the node must trust. */
  trustBundle: string;
}

export class CaService {
  private readonly ca: CertificateAuthority;
  private readonly tokens: JoinTokens;
  private readonly placement: WorkloadPlacement;
  private readonly nodeTtl: number;
  private readonly revoked: SharedDocument<string[]>;
  private readonly revokedCertificates: SharedDocument<RevokedCertificate[]>;
  private readonly issued: IssuedCertificates | undefined;
  /** This replica's revoked certificates are not all in the shared list yet (a commit failed). */
  private unshared = false;
  private closed = false;
  private readonly stopWatching: () => void;
  /** Revoked nodes whose certificates this replica has yet to put on the revocation list. */
  private readonly pending = new Set<string>();
  private retry: NodeJS.Timeout | undefined;

  constructor(options: CaServiceOptions) {
    this.ca = options.ca;
    this.tokens = options.tokens;
    this.placement = options.placement;
    this.nodeTtl = options.nodeCertTtlSeconds ?? 24 * 3600;
    this.issued = options.issued;
    this.revoked = new SharedDocument(options.store, REVOKED);
    this.revokedCertificates = new SharedDocument(options.store, REVOKED_CERTIFICATES);
    const onChange = options.onRevokedChange ?? (() => {});
    let known = new Set(this.revoked.read());
    this.stopWatching = this.revoked.onChange((names) => {
      const added = (names ?? []).filter((n) => !known.has(n));
      known = new Set(names);
      // The certificates this replica issued to the node join the revocation list, whoever revoked it.
      for (const node of added) this.pending.add(node);
      this.revokePending();
      onChange(added);
    });
    // What this replica revoked before the list was shared (an older version, or a failed share).
    if ((this.issued?.revoked().length ?? 0) > 0) void this.share();
  }

  /**
   * Puts each pending node's certificates on the revocation list, one node at a time: a node that fails
   * stays pending and is tried again on the next change or after a while. Nodes that rejoined meanwhile
   * are dropped (their new credential must not be revoked). Returns the failures, by node.
   */
  private revokePending(): Map<string, unknown> {
    const failed = new Map<string, unknown>();
    for (const node of this.pending) {
      if (!this.isRevoked(node)) {
        this.pending.delete(node);
        continue;
      }
      try {
        if ((this.issued?.revokeNode(node) ?? 0) > 0) this.unshared = true;
        this.pending.delete(node);
      } catch (err) {
        failed.set(node, err);
        log.error(
          { err, node },
          'could not put the certificates of a revoked node on the revocation list; trying again',
        );
      }
    }
    clearTimeout(this.retry);
    this.retry = undefined;
    if (this.unshared) void this.share();
    if (this.pending.size > 0) {
      this.retry = setTimeout(() => this.revokePending(), RETRY_REVOKE_MS);
      this.retry.unref();
    }
    return failed;
  }

  /** Adds this replica's revoked certificates to the shared list (expired ones leave it on the way). */
  private async share(): Promise<void> {
    if (!this.issued || this.closed) return;
    this.unshared = false;
    const mine = this.issued.revoked();
    try {
      await this.revokedCertificates.update((current) => {
        const now = Date.now();
        const live = validRevoked(current).filter((e) => Date.parse(e.notAfter) > now);
        const have = new Set(live.map(keyOf));
        const added = mine.filter((e) => !have.has(keyOf(e)));
        const dropped = live.length !== (current?.length ?? 0);
        return added.length > 0 || dropped ? [...live, ...added] : undefined;
      });
    } catch (err) {
      if (this.closed) return;
      this.unshared = true;
      log.error({ err }, 'could not share the revoked certificates with the other replicas; trying again');
      clearTimeout(this.retry);
      this.retry = setTimeout(() => this.revokePending(), RETRY_REVOKE_MS);
      this.retry.unref();
    }
  }

  /**
   * The unexpired revoked certificates of every replica (the shared list) and this one's own, for the
   * trust bundle. Called when the bundle is built.
   */
  revokedCertificateList(now = Date.now()): RevokedCertificate[] {
    const out = new Map<string, RevokedCertificate>();
    for (const e of [...validRevoked(this.revokedCertificates.read()), ...(this.issued?.revoked() ?? [])])
      if (Date.parse(e.notAfter) > now && !out.has(keyOf(e))) out.set(keyOf(e), e);
    return [...out.values()];
  }

  /** Calls `listener` when the shared revocation list changes, whichever replica changed it. */
  onRevokedCertificatesChange(listener: () => void): () => void {
    return this.revokedCertificates.onChange(() => listener());
  }

  /** Takes over the revoked-node list an older control plane kept (`revoked-nodes.json`), once. */
  takeOver(file: string): Promise<void> {
    const names = (json: unknown) =>
      Array.isArray(json) ? json.filter((n): n is string => typeof n === 'string') : [];
    return this.revoked.takeOver(file, names, (cause) => cause as Error);
  }

  /** Stops following revocations made elsewhere. */
  close(): void {
    this.closed = true;
    this.stopWatching();
    clearTimeout(this.retry);
  }

  /** True when the node's credential was revoked (until it rejoins with a new token). */
  isRevoked(node: string): boolean {
    return this.revoked.read()?.includes(node) ?? false;
  }

  get trustDomain(): string {
    return this.ca.trustDomain;
  }

  trustBundlePem(): string {
    return this.ca.bundle.toPem();
  }

  /** Exchanges a join token for a node credential. The CSR must name the node the token was issued for. */
  async join(token: string, csrPem: string): Promise<JoinResult> {
    const node = await this.tokens.redeem(token);
    try {
      const csr = await this.ca.validate(csrPem);
      const expected = nodeId(this.ca.trustDomain, node);
      if (csr.identity.id !== expected) {
        throw new AmbitError(
          CONTROL_ERRORS.CA_IMPERSONATION,
          `the join request asks for ${csr.identity.id}, but the token was issued for node "${node}" (${expected})`,
          { detail: { requested: csr.identity.id, node } },
        );
      }
      const issued = await this.ca.issue(csr, { ttlSeconds: this.nodeTtl, usage: 'client' });
      this.issued?.record(node, issued.certPem);
      // Decided inside the commit: this replica's mirror may not hold a revocation made just now elsewhere.
      await this.revoked.update((names) =>
        names?.includes(node) ? names.filter((n) => n !== node) : undefined,
      );
      return { node, issued, trustBundle: this.trustBundlePem() };
    } catch (err) {
      // Should the store refuse this too, the token stays spent: the join's own failure is the news.
      await this.tokens.release(token).catch(() => {});
      throw err;
    }
  }

  /** Stops honouring a node's credential (e.g. a decommissioned or compromised machine). */
  async revokeNode(node: string): Promise<void> {
    nodeId(this.ca.trustDomain, node); // validates the name
    // Every replica's watch (this one's too) then revokes what it issued to the node.
    await this.revoked.update((names = []) => (names.includes(node) ? undefined : [...names, node]));
    // This replica's part is the caller's to know: had it failed, the caller hears so (it is retried).
    const failure = this.pending.has(node) ? this.revokePending().get(node) : undefined;
    if (failure !== undefined) throw failure;
  }

  /** The node a verified caller identity belongs to; refuses anything but a live node credential. */
  nodeOf(caller: SpiffeId | undefined): string {
    const prefix = `spiffe://${this.ca.trustDomain}/ns/ambit-system/sa/node/`;
    if (caller === undefined || !caller.startsWith(prefix)) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_UNAUTHENTICATED,
        caller === undefined
          ? 'the caller presented no node credential: join with a token first, then call with the node certificate'
          : `the caller ${caller} is not a node of trust domain "${this.ca.trustDomain}"`,
      );
    }
    const node = caller.slice(prefix.length);
    if (this.isRevoked(node)) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_NODE_REVOKED,
        `the credential of node "${node}" was revoked: rejoin with a new token`,
      );
    }
    return node;
  }

  /**
   * Signs a CSR for a caller already authenticated as `node`. A node may renew its own credential; any other
   * identity must be a workload identity placed on that node.
   */
  async createCertificate(
    node: string,
    csrPem: string,
    options: { ttlSeconds?: number; impersonatedIdentity?: string } = {},
  ): Promise<IssuedCertificate> {
    const csr = await this.ca.validate(csrPem);
    const id = csr.identity.id;
    if (options.impersonatedIdentity && options.impersonatedIdentity !== id) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_IDENTITY_MISMATCH,
        `the request is for ${options.impersonatedIdentity} but its CSR names ${id}: they must be the same`,
      );
    }
    if (id === nodeId(this.ca.trustDomain, node)) {
      return this.recorded(node, await this.ca.issue(csr, { ttlSeconds: this.nodeTtl, usage: 'client' }));
    }
    // The mesh's own identities (the control plane's, other nodes') are never a workload's to ask for.
    if (csr.identity.namespace === SYSTEM_NAMESPACE) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_IMPERSONATION,
        `node "${node}" asked for ${id}: identities in namespace ${SYSTEM_NAMESPACE} belong to the mesh itself`,
        { detail: { node, identity: id } },
      );
    }
    if (csr.identity.namespace === undefined || !this.placement.hasWorkload(node, id)) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_IMPERSONATION,
        `node "${node}" asked for ${id}, but no workload with that identity is placed on it`,
        { detail: { node, identity: id } },
      );
    }
    return this.recorded(
      node,
      await this.ca.issue(csr, { ttlSeconds: options.ttlSeconds, usage: 'workload' }),
    );
  }

  /**
   * Records a certificate for `node` before it leaves. The node may have been revoked while its request
   * was being signed: then the certificate is refused, as it would miss the revocation list.
   */
  private recorded(node: string, issued: IssuedCertificate): IssuedCertificate {
    if (this.isRevoked(node)) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_NODE_REVOKED,
        `the credential of node "${node}" was revoked: rejoin with a new token`,
      );
    }
    this.issued?.record(node, issued.certPem);
    return issued;
  }
}

const keyOf = (e: RevokedCertificate) => revocationKey(e.issuer, e.serial);

/** The entries of a shared revocation list that have the right shape (the store is outside input). */
function validRevoked(list: unknown): RevokedCertificate[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((e) => {
    const parsed = revokedCertificateEntry.safeParse(e);
    return parsed.success && Number.isFinite(Date.parse(parsed.data.notAfter)) ? [parsed.data] : [];
  });
}
