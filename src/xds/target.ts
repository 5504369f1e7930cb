// Where a proxy finds the control plane: one `host:port`, or several replicas' addresses,
// comma-separated. Several become one gRPC channel over all of them (its `ipv4:`/`ipv6:` target), whose
// pick_first policy, with the list shuffled, connects to one replica and moves to another when that
// one goes away; the config stream then resumes there with the versions the proxy holds.

import { isIP } from 'node:net';
import { AmbitError } from '../errors/index.ts';
import { XDS_ERRORS } from './errors.ts';

const HOST_PORT = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s,]+)):([0-9]{1,5})$/;

/** Each `host:port` of `text` (IPv6 in brackets), checked; the error names the bad one. */
export function controlAddresses(text: string): Array<{ host: string; port: number; family: 0 | 4 | 6 }> {
  const entries = text.split(',').map((e) => e.trim());
  if (entries.length === 0 || entries.some((e) => e === ''))
    throw bad(`"${text}" is not host:port[,host:port…]`);
  return entries.map((entry) => {
    const m = HOST_PORT.exec(entry);
    const port = Number(m?.[3]);
    const host = m?.[1] ?? m?.[2] ?? '';
    if (!m || port < 1 || port > 65535 || (m[1] !== undefined && isIP(host) !== 6))
      throw bad(`"${entry}" is not host:port (for example 198.18.0.254:15010, or [2001:2::1]:15010)`);
    return { host, port, family: isIP(host) as 0 | 4 | 6 };
  });
}

/** The gRPC target for `text`: the address itself, or one `ipv4:`/`ipv6:` target over several. */
export function controlTarget(text: string): string {
  const list = controlAddresses(text);
  if (list.length === 1) return text.trim();
  const family = list[0]!.family;
  if (family === 0 || list.some((a) => a.family !== family))
    throw bad(
      `"${text}": several control-plane replicas are given by their addresses, all IPv4 or all IPv6 (not names)`,
    );
  const hosts = list.map((a) => (family === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`));
  return `ipv${family}:${hosts.join(',')}`;
}

function bad(message: string): AmbitError {
  return new AmbitError(XDS_ERRORS.BAD_TARGET, `--control ${message}`);
}
