// The CSR service's decisions, free of any transport: a node joins with a token and gets a node credential;
// a joined node gets workload certificates only for identities placed on it (the impersonation check).

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { AmbitError } from '../../errors/index.ts';
import { nodeId, type SpiffeId, SYSTEM_NAMESPACE } from '../../identity/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';
import type { CertificateAuthority, IssuedCertificate } from './authority.ts';
import type { IssuedCertificates } from './issued.ts';
import type { WorkloadPlacement } from './placement.ts';
import type { JoinTokens } from './tokens.ts';

export interface CaServiceOptions {
  ca: CertificateAuthority;
  tokens: JoinTokens;
  placement: WorkloadPlacement;
  /** Lifetime of node credentials; a node renews its own before expiry like any certificate. */
  nodeCertTtlSeconds?: number;
  /** Where revoked nodes are kept, so a revocation survives a restart. */
  revokedFile?: string;
  /** Records what each node was issued, so revoking the node revokes its certificates (issued.ts). */
  issued?: IssuedCertificates;
  /** Called after a node is revoked or rejoins (the registry takes its workloads out or back in). */
  onRevokedChange?: () => void;
}

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
  private readonly revokedNodes = new Set<string>();
  private readonly revokedFile: string | undefined;
  private readonly onRevokedChange: () => void;
  private readonly issued: IssuedCertificates | undefined;

  constructor(options: CaServiceOptions) {
    this.ca = options.ca;
    this.tokens = options.tokens;
    this.placement = options.placement;
    this.nodeTtl = options.nodeCertTtlSeconds ?? 24 * 3600;
    this.revokedFile = options.revokedFile;
    this.onRevokedChange = options.onRevokedChange ?? (() => {});
    this.issued = options.issued;
    if (this.revokedFile) {
      try {
        const names = JSON.parse(readFileSync(this.revokedFile, 'utf8')) as unknown;
        if (Array.isArray(names)) for (const n of names) if (typeof n === 'string') this.revokedNodes.add(n);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  /** True when the node's credential was revoked (until it rejoins with a new token). */
  isRevoked(node: string): boolean {
    return this.revokedNodes.has(node);
  }

  private saveRevoked(): void {
    if (!this.revokedFile) return;
    writeFileSync(`${this.revokedFile}.tmp`, JSON.stringify([...this.revokedNodes]), { mode: 0o600 });
    renameSync(`${this.revokedFile}.tmp`, this.revokedFile);
  }

  get trustDomain(): string {
    return this.ca.trustDomain;
  }

  trustBundlePem(): string {
    return this.ca.bundle.toPem();
  }

  /** Exchanges a join token for a node credential. The CSR must name the node the token was issued for. */
  async join(token: string, csrPem: string): Promise<JoinResult> {
    const node = this.tokens.redeem(token);
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
      if (this.revokedNodes.delete(node)) {
        this.saveRevoked();
        this.onRevokedChange();
      }
      return { node, issued, trustBundle: this.trustBundlePem() };
    } catch (err) {
      this.tokens.release(token);
      throw err;
    }
  }

  /** Stops honouring a node's credential (e.g. a decommissioned or compromised machine). */
  revokeNode(node: string): void {
    nodeId(this.ca.trustDomain, node); // validates the name
    this.revokedNodes.add(node);
    this.saveRevoked();
    this.issued?.revokeNode(node);
    this.onRevokedChange();
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
    if (this.revokedNodes.has(node)) {
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
    if (this.revokedNodes.has(node)) {
      throw new AmbitError(
        CONTROL_ERRORS.CA_NODE_REVOKED,
        `the credential of node "${node}" was revoked: rejoin with a new token`,
      );
    }
    this.issued?.record(node, issued.certPem);
    return issued;
  }
}
