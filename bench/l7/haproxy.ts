// The C baseline of the L7 benchmark: an HAProxy pair in `mode http` with mutual TLS between them (the
// client side on the client's node, the server side on the server's node), and the static HTTP server
// every path ends at (an haproxy answering 200 itself, so the server costs little next to the proxies).
// Certificates come from a throwaway CA that `openssl` makes in a temporary directory.

import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface PairTls {
  /** PEM with certificate and key the client side presents (haproxy's `crt`). */
  clientCrt: string;
  /** PEM with certificate and key the server side presents. */
  serverCrt: string;
  /** The CA certificate both sides verify the peer with (`ca-file`). */
  caFile: string;
}

/** One hop of the pair: the client side's plain port, the server side's TLS address, the server pod. */
export interface PairRoute {
  /** Plain HTTP port on the client's node (clients dial the node's gateway address). */
  plainPort: number;
  /** The server-side haproxy: its node's underlay address and TLS port. */
  tlsAddress: string;
  tlsPort: number;
  /** Where the server side forwards: `ip:port` of the server pod. */
  target: string;
}

const openssl = (dir: string, args: string[]) => execFileP('openssl', args, { cwd: dir });

/**
 * A P-256 CA (valid one day) and one leaf per side signed by it, in `dir`: the server leaf names
 * `serverIp` (clientAuth and serverAuth both, as a mesh identity would be used), the client leaf is a
 * client certificate. Returns the PEM files haproxy reads.
 */
export async function throwawayCa(dir: string, serverIp: string): Promise<PairTls> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl(dir, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=ambit bench l7 throwaway CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const leaf = async (name: string, ext: string) => {
    await writeFile(join(dir, `${name}.ext`), `${ext}\n`);
    await openssl(dir, [
      'req',
      ...ec,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    ]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ]);
    const [crt, key] = await Promise.all([
      readFile(join(dir, `${name}.crt`), 'utf8'),
      readFile(join(dir, `${name}.key`), 'utf8'),
    ]);
    const pem = join(dir, `${name}.pem`);
    await writeFile(pem, crt + key, { mode: 0o600 });
    return pem;
  };
  const usage = 'keyUsage=critical,digitalSignature';
  return {
    clientCrt: await leaf('client', `${usage}\nextendedKeyUsage=clientAuth`),
    serverCrt: await leaf(
      'server',
      `${usage}\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:${serverIp}`,
    ),
    caFile: join(dir, 'ca.pem'),
  };
}

const HTTP_DEFAULTS = [
  'defaults',
  '  mode http',
  // Keep-alive on both sides of each haproxy (2.6's default, said here), and server connections reused.
  '  option http-keep-alive',
  '  http-reuse always',
  '  timeout connect 5s',
  '  timeout client 60s',
  '  timeout server 60s',
  '  timeout http-keep-alive 60s',
];

const GLOBAL = [
  'global',
  '  maxconn 4000',
  '  ssl-default-bind-options ssl-min-ver TLSv1.3',
  '  ssl-default-server-options ssl-min-ver TLSv1.3',
];

/**
 * One node's haproxy of the pair: the client side (`outbound`: plain HTTP in, TLS 1.3 with a client
 * certificate out to the peer) and/or the server side (`inbound`: TLS with `verify required` in, plain
 * HTTP to the pod). Both parse every request and response (`mode http`).
 */
export function pairConfig(tls: PairTls, outbound: PairRoute[], inbound: PairRoute[]): string {
  const lines = [...GLOBAL, ...HTTP_DEFAULTS];
  for (const [i, r] of outbound.entries()) {
    lines.push(
      `frontend out_${i}`,
      `  bind :${r.plainPort}`,
      `  default_backend tls_${i}`,
      `backend tls_${i}`,
      `  server peer ${r.tlsAddress}:${r.tlsPort} ssl verify required ca-file ${tls.caFile} crt ${tls.clientCrt} alpn http/1.1`,
    );
  }
  for (const [i, r] of inbound.entries()) {
    lines.push(
      `frontend in_${i}`,
      `  bind ${r.tlsAddress}:${r.tlsPort} ssl crt ${tls.serverCrt} ca-file ${tls.caFile} verify required alpn http/1.1`,
      `  default_backend plain_${i}`,
      `backend plain_${i}`,
      `  server pod ${r.target}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The server at the end of every path: one haproxy thread answering `200 ok` to every request on `port`. */
export function staticServerConfig(port: number): string {
  return `${[
    'global',
    '  maxconn 4000',
    '  nbthread 1',
    ...HTTP_DEFAULTS,
    'frontend web',
    `  bind :${port}`,
    '  http-request return status 200 content-type text/plain string ok',
  ].join('\n')}\n`;
}
