// The node's side of the CSR service: join with a token for a node credential, then request workload
// certificates with it. A CaClient is the CertificateSource behind the ztunnel's certificate manager.

import * as grpc from '@grpc/grpc-js';
import { AmbitError } from '../errors/index.ts';
import {
  type CertificateSource,
  controlPlaneId,
  createCsr,
  generateKeyPair,
  IDENTITY_ERRORS,
  nodeId,
  type SpiffeId,
  TrustBundle,
  verifyChain,
} from '../identity/index.ts';
import { type CreateCertificateResponse, certificateServiceClass, type JoinResponse } from './ca-proto.ts';
import { fromServiceError } from './status.ts';
import { controlTarget } from './target.ts';

/** What a node keeps after joining: its credential and the roots it trusts. */
export interface NodeCredential {
  node: string;
  trustDomain: string;
  certChainPem: string;
  keyPem: string;
  trustBundlePem: string;
}

export interface CaClientOptions {
  /** host:port of the control plane (15010). */
  address: string;
  trustDomain: string;
  trustBundlePem: string;
  /** Omit for Join; required for every other call. */
  credential?: NodeCredential;
  /** Per-call deadline; default 10 s. */
  timeoutMs?: number;
}

type Unary<Req, Res> = (
  req: Req,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => void;

/** The control plane is known by its SPIFFE ID, not a host name; gRPC still wants a name to check. */
export const CONTROL_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.ssl_target_name_override': 'ambit-control',
  // Notice a control plane that went away silently (no FIN): PING every 20 s, give up after 10 s.
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  // Over several replicas (an ipv4:/ipv6: target), each proxy connects to one at random and moves to
  // another when it goes away.
  'grpc.service_config': JSON.stringify({
    loadBalancingConfig: [{ pick_first: { shuffleAddressList: true } }],
  }),
};

/**
 * TLS credentials for calls to the control plane: trust only the mesh roots, check the server is the
 * control plane's SPIFFE ID, and present the node credential when there is one.
 */
export function controlPlaneCredentials(
  trustDomain: string,
  trustBundlePem: string,
  credential?: { certChainPem: string; keyPem: string },
): grpc.ChannelCredentials {
  const expected = controlPlaneId(trustDomain);
  const bundle = new TrustBundle(trustBundlePem);
  return grpc.credentials.createSsl(
    Buffer.from(trustBundlePem),
    credential ? Buffer.from(credential.keyPem) : null,
    credential ? Buffer.from(credential.certChainPem) : null,
    {
      checkServerIdentity: (_host, cert) => {
        try {
          const id = verifyChain([cert.raw], bundle).id;
          return id === expected
            ? undefined
            : new Error(`control plane presented ${id}, expected ${expected}`);
        } catch (err) {
          return err as Error;
        }
      },
    },
  );
}

export class CaClient implements CertificateSource {
  private readonly client: grpc.Client;
  private readonly timeoutMs: number;
  private readonly options: CaClientOptions;

  constructor(options: CaClientOptions) {
    this.options = options;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const creds = controlPlaneCredentials(options.trustDomain, options.trustBundlePem, options.credential);
    const Ctor = certificateServiceClass();
    this.client = new Ctor(controlTarget(options.address), creds, CONTROL_CHANNEL_OPTIONS);
  }

  private call<Req, Res>(method: string, req: Req): Promise<Res> {
    const fn = (this.client as unknown as Record<string, Unary<Req, Res>>)[method]!.bind(this.client);
    return new Promise((resolve, reject) => {
      fn(req, { deadline: Date.now() + this.timeoutMs }, (err, res) =>
        err ? reject(fromServiceError(err)) : resolve(res),
      );
    });
  }

  /** Exchanges a join token for a node credential for `node`. */
  async join(token: string, node: string): Promise<NodeCredential> {
    const pair = await generateKeyPair();
    const res = await this.call<{ token: string; csr: string }, JoinResponse>('Join', {
      token,
      csr: await createCsr(nodeId(this.options.trustDomain, node), pair.keys),
    });
    const chain = res.cert_chain;
    const id = verifyChain(chain, new TrustBundle(res.trust_bundle)).id;
    if (id !== nodeId(this.options.trustDomain, node)) {
      throw new AmbitError(
        IDENTITY_ERRORS.WRONG_CERT,
        `joined as ${node} but the CA returned a credential for ${id}`,
      );
    }
    return {
      node: res.node,
      trustDomain: this.options.trustDomain,
      certChainPem: chain.slice(0, -1).join(''),
      keyPem: pair.privateKeyPem,
      trustBundlePem: res.trust_bundle,
    };
  }

  /** CertificateSource: asks the CA to sign `csrPem` for `id`; returns the chain, leaf first. */
  async fetch(id: SpiffeId, csrPem: string, ttlSeconds = 0): Promise<string[]> {
    const res = await this.call<object, CreateCertificateResponse>('CreateCertificate', {
      csr: csrPem,
      validity_duration: ttlSeconds,
      impersonated_identity: id,
    });
    if (res.cert_chain.length === 0) {
      throw new AmbitError(IDENTITY_ERRORS.WRONG_CERT, `the CA returned an empty chain for ${id}`);
    }
    return res.cert_chain;
  }

  /** Resolves once the channel is connected (or rejects at the deadline); useful after a control-plane restart. */
  waitForReady(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) =>
        err ? reject(fromServiceError(err as grpc.ServiceError)) : resolve(),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
