// Connections to endpoints outside the mesh (a ServiceEntry's, for egress through the waypoint): a DNS
// endpoint's name is resolved, TCP is opened from the waypoint's own address, and TLS is originated when
// a DestinationRule asks for it. SIMPLE verifies the server against the rule's roots (`caCertificates`,
// else the system's) and its name against `subjectAltNames`, else the SNI (Envoy's auto SAN validation);
// MUTUAL also presents the rule's client certificate. The files are read when first needed and again
// once a minute, so a renewed certificate is picked up without a restart.

import { readFile } from 'node:fs/promises';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { resolveOne } from '../dns/index.ts';
import { AmbitError, describeError } from '../errors/index.ts';
import { WAYPOINT_ERRORS } from './errors.ts';
import type { ConnectOptions, Endpoint } from './http/index.ts';
import type { OriginationTls } from './traffic-policy/index.ts';

/** How long a certificate file read is reused; files kept at most. */
const FILE_REUSE_MS = 60_000;
const MAX_FILES = 64;

/** The certificate files a DestinationRule names, read on demand and re-read after a minute. */
export class CertificateFiles {
  private readonly files = new Map<string, { at: number; data: Promise<Buffer> }>();

  read(path: string, what: string): Promise<Buffer> {
    const now = Date.now();
    const kept = this.files.get(path);
    if (kept && now - kept.at < FILE_REUSE_MS) return kept.data;
    const data = readFile(path).catch((err: unknown) => {
      if (this.files.get(path)?.data === data) this.files.delete(path);
      throw new AmbitError(
        WAYPOINT_ERRORS.ORIGINATION,
        `cannot read the DestinationRule's tls.${what} ${path}: ${describeError(err)}`,
        { cause: err },
      );
    });
    data.catch(() => {});
    this.files.delete(path);
    if (this.files.size >= MAX_FILES) this.files.delete(this.files.keys().next().value!);
    this.files.set(path, { at: now, data });
    return data;
  }
}

/** The names a certificate's subjectAltName carries (`DNS:a, URI:b, IP Address:c` → a, b, c). */
function altNames(cert: tls.PeerCertificate): string[] {
  return (cert.subjectaltname ?? '')
    .split(', ')
    .map((entry) => entry.slice(entry.indexOf(':') + 1))
    .filter(Boolean);
}

/** The TLS client options an origination asks for. */
async function clientOptions(
  rule: OriginationTls,
  serverName: string,
  files: CertificateFiles,
  alpn: string[] | undefined,
): Promise<tls.ConnectionOptions> {
  if (rule.credentialName !== undefined)
    throw new AmbitError(
      WAYPOINT_ERRORS.ORIGINATION,
      `the DestinationRule's tls.credentialName ${rule.credentialName} names a Kubernetes Secret, and Ambit has no secret store: give tls.caCertificates (and clientCertificate and privateKey for MUTUAL) as files on the waypoint's host`,
    );
  const [ca, cert, key] = await Promise.all([
    rule.caCertificates === undefined ? undefined : files.read(rule.caCertificates, 'caCertificates'),
    rule.mode === 'MUTUAL' && rule.clientCertificate !== undefined
      ? files.read(rule.clientCertificate, 'clientCertificate')
      : undefined,
    rule.mode === 'MUTUAL' && rule.privateKey !== undefined
      ? files.read(rule.privateKey, 'privateKey')
      : undefined,
  ]);
  if (rule.mode === 'MUTUAL' && (cert === undefined || key === undefined))
    throw new AmbitError(
      WAYPOINT_ERRORS.ORIGINATION,
      'the DestinationRule asks for tls.mode MUTUAL without tls.clientCertificate and tls.privateKey',
    );
  const wanted = rule.subjectAltNames;
  return {
    ...(net.isIP(serverName) === 0 ? { servername: serverName } : {}),
    ...(ca ? { ca } : {}),
    ...(cert && key ? { cert, key } : {}),
    ...(alpn ? { ALPNProtocols: alpn } : {}),
    rejectUnauthorized: !rule.insecureSkipVerify,
    checkServerIdentity: (host, peer) => {
      if (rule.insecureSkipVerify) return undefined;
      if (!wanted) return tls.checkServerIdentity(host, peer);
      const names = altNames(peer);
      return wanted.some((n) => names.includes(n))
        ? undefined
        : new Error(
            `the server's certificate names ${names.join(', ') || 'nothing'}, none of the subjectAltNames ${wanted.join(', ')}`,
          );
    },
  };
}

/** Resolves when `socket` emits `ready`, rejects on its error or the signal. */
function settled(socket: net.Socket, ready: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown) => {
      socket.off(ready, onReady);
      socket.off('error', done);
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else {
        socket.destroy();
        reject(err);
      }
    };
    const onReady = () => done();
    const onAbort = () => done(signal.reason ?? new Error('aborted'));
    if (signal.aborted) return onAbort();
    socket.once(ready, onReady);
    socket.once('error', done);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A byte stream to `endpoint`, an address outside the mesh: TCP, or TLS over it when the endpoint
 * carries an origination. Rejects (and leaves nothing open) when the name does not resolve, the
 * connection fails, or the server's certificate does not verify.
 */
export async function connectOutside(
  endpoint: Endpoint,
  signal: AbortSignal,
  opts: ConnectOptions | undefined,
  files: CertificateFiles,
  resolveTimeoutMs: number,
  refuse?: (address: string) => string | undefined,
): Promise<Duplex> {
  const address = endpoint.resolve
    ? await resolveOne(endpoint.address, resolveTimeoutMs, signal)
    : endpoint.address;
  // A caller's own rule for where it never dials (a sidecar: the pod's loopback and link-local addresses).
  const refused = refuse?.(address);
  if (refused !== undefined) throw new Error(refused);
  const rule = endpoint.tls;
  const serverName =
    rule?.sni ?? opts?.serverName ?? endpoint.host ?? (endpoint.resolve ? endpoint.address : address);
  // The TLS settings (their files) first: a rule that cannot work opens no connection, and no socket
  // waits unlistened while files are read.
  const options = rule ? await clientOptions(rule, serverName, files, opts?.alpn) : undefined;
  signal.throwIfAborted();
  const socket = net.connect({ host: address, port: endpoint.port, noDelay: true });
  await settled(socket, 'connect', signal);
  if (!options) return socket;
  const secured = tls.connect({ ...options, socket, host: serverName });
  await settled(secured, 'secureConnect', signal);
  return secured;
}
