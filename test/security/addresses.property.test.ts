// Property tests of the address parsers that read from outside: the IP canonicaliser and `ip:port`
// authority of src/hbone (CONNECT authorities, SOCKS targets, peer addresses), the VIP range parser
// (src/control/registry), and `host:port` listen addresses (the control plane's flags and config file).

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { loadControlConfig } from '../../src/control/config-file.ts';
import { parseListen } from '../../src/control/index.ts';
import { parseVipRange } from '../../src/control/registry/index.ts';
import { hasCode } from '../../src/errors/index.ts';
import { canonicalIp, formatAuthority, HBONE_ERRORS, parseAuthority } from '../../src/hbone/index.ts';

const RUNS = { numRuns: 1000 };

const v4 = fc.ipV4();
const v6 = fc.ipV6();
const port = fc.integer({ min: 1, max: 65535 });
const zone = fc.stringMatching(/^[a-z0-9]{1,8}$/);
/** Strings near the grammar: address characters, brackets, colons, percent, spaces. */
const addressish = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc
    .array(fc.constantFrom(...'0123456789abcdefABCDEF:.[]%/ x', '::', 'ffff', '255', '256'), {
      maxLength: 24,
    })
    .map((a) => a.join('')),
  fc.tuple(fc.oneof(v4, v6), fc.string({ maxLength: 6 })).map(([ip, s]) => `${ip}${s}`),
);
/** Zone indexes have a property of their own below. */
const addressishNoZone = addressish.filter((s) => !s.includes('%'));

/** The 128-bit value of an IPv6 literal (or of an IPv4 address, as IPv4-mapped), as a reference. */
function bits(ip: string): bigint {
  if (isIP(ip) === 4)
    return (0xffffn << 32n) | BigInt(ip.split('.').reduce((a, o) => a * 256 + Number(o), 0));
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = dotted[1]!.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    text = `${text.slice(0, dotted.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

function nothingButCode<T>(code: string, f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    if (hasCode(err, code)) return undefined;
    throw err;
  }
}

describe('IP canonicaliser (property)', () => {
  test('arbitrary strings give a canonical IP or undefined, never a throw', () => {
    fc.assert(
      fc.property(addressishNoZone, (s) => {
        const ip = canonicalIp(s);
        if (ip === undefined) return;
        assert.notEqual(isIP(ip), 0, `${JSON.stringify(s)} -> ${ip}`);
        assert.equal(canonicalIp(ip), ip, 'canonical form is a fixed point');
      }),
      RUNS,
    );
  });

  test('an IPv6 literal with a zone index gives undefined, never a throw', () => {
    fc.assert(
      fc.property(v6, zone, (ip, z) => {
        const s = `${ip}%${z}`;
        assert.equal(canonicalIp(s), undefined, s);
        assert.equal(
          nothingButCode(HBONE_ERRORS.BAD_AUTHORITY, () => parseAuthority(`[${s}]:80`)),
          undefined,
          s,
        );
      }),
      { numRuns: 200 },
    );
  });

  test('IPv4 stays as written; IPv4-mapped IPv6, in any spelling, folds to the IPv4 address', () => {
    const spelling = fc.constantFrom(
      (a: string) => `::ffff:${a}`,
      (a: string) => `::FFFF:${a}`,
      (a: string) => `0:0:0:0:0:ffff:${a}`,
      (a: string) => {
        const n = a.split('.').map(Number);
        return `::ffff:${((n[0]! << 8) | n[1]!).toString(16)}:${((n[2]! << 8) | n[3]!).toString(16)}`;
      },
    );
    fc.assert(
      fc.property(v4, spelling, (a, spell) => {
        assert.equal(canonicalIp(a), a);
        assert.equal(canonicalIp(spell(a)), a, spell(a));
      }),
      RUNS,
    );
  });

  test('two spellings of one IPv6 address canonicalise alike, and different addresses differently', () => {
    fc.assert(
      fc.property(v6, v6, (a, b) => {
        const ca = canonicalIp(a)!;
        assert.equal(canonicalIp(a.toUpperCase()), ca);
        assert.equal(bits(ca), bits(a), `${a} -> ${ca}`);
        assert.equal(ca === canonicalIp(b), bits(a) === bits(b), `${a} vs ${b}`);
      }),
      RUNS,
    );
  });
});

describe('HBONE authority parser (property)', () => {
  test('arbitrary strings give an address or AMBIT_ERR_HBONE_BAD_AUTHORITY', () => {
    const text = fc
      .oneof(
        addressish,
        fc.tuple(addressish, fc.string({ maxLength: 7 })).map(([a, p]) => `${a}:${p}`),
        fc.tuple(addressish, fc.string({ maxLength: 7 })).map(([a, p]) => `[${a}]:${p}`),
      )
      .filter((s) => !s.includes('%'));
    fc.assert(
      fc.property(text, (s) => {
        const addr = nothingButCode(HBONE_ERRORS.BAD_AUTHORITY, () => parseAuthority(s));
        if (addr === undefined) return;
        assert.equal(canonicalIp(addr.address), addr.address);
        assert.ok(Number.isInteger(addr.port) && addr.port >= 1 && addr.port <= 65535);
        assert.deepEqual(parseAuthority(formatAuthority(addr)), addr);
      }),
      RUNS,
    );
  });

  test('ip:port round-trips through format and parse, IPv6 in brackets, mapped IPv4 folded', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          v4,
          v6,
          v4.map((a) => `::ffff:${a}`),
        ),
        port,
        (ip, p) => {
          const text = isIP(ip) === 6 ? `[${ip}]:${p}` : `${ip}:${p}`;
          const addr = parseAuthority(text);
          assert.deepEqual(addr, { address: canonicalIp(ip), port: p });
          assert.deepEqual(parseAuthority(formatAuthority(addr)), addr);
        },
      ),
      RUNS,
    );
  });

  test('ports outside 1-65535, host names and unbracketed IPv6 are refused', () => {
    const bad = fc.oneof(
      fc
        .tuple(v4, fc.oneof(fc.constant(0), fc.integer({ min: 65536, max: 99999 })))
        .map(([a, p]) => `${a}:${p}`),
      fc.tuple(fc.domain(), port).map(([d, p]) => `${d}:${p}`),
      fc.tuple(v6, port).map(([a, p]) => `${a}:${p}`),
      fc.tuple(v4, port).map(([a, p]) => `${a}:+${p}`),
    );
    fc.assert(
      fc.property(bad, (s) => {
        assert.equal(
          nothingButCode(HBONE_ERRORS.BAD_AUTHORITY, () => parseAuthority(s)),
          undefined,
          s,
        );
      }),
      RUNS,
    );
  });
});

describe('VIP range parser (property)', () => {
  const toInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

  test('an IPv4 CIDR from /8 to /30 gives the usable addresses of its network', () => {
    fc.assert(
      fc.property(v4, fc.integer({ min: 8, max: 30 }), (ip, prefix) => {
        const range = parseVipRange(`${ip}/${prefix}`);
        const size = 2 ** (32 - prefix);
        const network = toInt(ip) - (toInt(ip) % size);
        assert.deepEqual(range, { first: network + 1, last: network + size - 2 });
        // Round-trip: the network address with the same prefix names the same range.
        const net = [24, 16, 8, 0].map((s) => Math.floor(network / 2 ** s) % 256).join('.');
        assert.deepEqual(parseVipRange(`${net}/${prefix}`), range);
      }),
      RUNS,
    );
  });

  /** parseVipRange throws AMBIT_ERR_CONFIG_BAD_VIP_RANGE naming the input. */
  const refused = (s: string) => {
    try {
      parseVipRange(s);
      return false;
    } catch (err) {
      if (!hasCode(err, 'AMBIT_ERR_CONFIG_BAD_VIP_RANGE')) throw err;
      assert.ok((err as Error).message.includes(s), (err as Error).message);
      return true;
    }
  };

  test('arbitrary strings give a range or an error naming the input', () => {
    fc.assert(
      fc.property(addressish, (s) => {
        refused(s);
      }),
      RUNS,
    );
  });

  test('prefixes outside /8-/30, IPv6 and non-decimal prefixes are refused', () => {
    const bad = fc.oneof(
      fc
        .tuple(v4, fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 31, max: 200 })))
        .map(([a, p]) => `${a}/${p}`),
      fc.tuple(v6, fc.integer({ min: 8, max: 30 })).map(([a, p]) => `${a}/${p}`),
      fc
        .tuple(v4, fc.constantFrom('', '0x10', '1e1', ' 16', '16 ', '+16', '-16'))
        .map(([a, p]) => `${a}/${p}`),
      v4,
    );
    fc.assert(
      fc.property(bad, (s) => {
        assert.ok(refused(s), `accepted ${s}`);
      }),
      RUNS,
    );
  });

  test('anything after the prefix is refused', () => {
    fc.assert(
      fc.property(v4, fc.integer({ min: 8, max: 30 }), fc.string({ maxLength: 5 }), (a, p, s) => {
        assert.ok(refused(`${a}/${p}/${s}`));
      }),
      { numRuns: 200 },
    );
  });

  test('a bad VIP range carries a stable AMBIT_ERR code', () => {
    assert.throws(
      () => parseVipRange('nope'),
      (e) =>
        typeof (e as { code?: unknown }).code === 'string' &&
        /^AMBIT_ERR_/.test((e as { code: string }).code),
    );
  });
});

describe('listen address parsers (property)', () => {
  const BAD_LISTEN = 'AMBIT_ERR_CONTROL_BAD_LISTEN';
  const formatListen = ({ host, port: p }: { host: string; port: number }) =>
    host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`;

  test('arbitrary strings give host and port or AMBIT_ERR_CONTROL_BAD_LISTEN; accepted values round-trip', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          addressish,
          fc.tuple(addressish, port).map(([a, p]) => `${a}:${p}`),
        ),
        (s) => {
          const at = nothingButCode(BAD_LISTEN, () => parseListen(s, '--admin-listen'));
          if (at === undefined) return;
          assert.ok(Number.isInteger(at.port) && at.port >= 0 && at.port <= 65535);
          assert.deepEqual(parseListen(formatListen(at), '--admin-listen'), at);
        },
      ),
      RUNS,
    );
  });

  test('IP literals and host names with a port in 0-65535 are accepted and round-trip', () => {
    const host = fc.oneof(v4, v6, fc.domain());
    fc.assert(
      fc.property(host, fc.integer({ min: 0, max: 65535 }), (h, p) => {
        const at = parseListen(formatListen({ host: h, port: p }), '--grpc-listen');
        assert.deepEqual(at, { host: h, port: p });
      }),
      RUNS,
    );
  });

  test('a host that is neither an IP literal nor a DNS name is refused', () => {
    const bad = fc.constantFrom('[:]:80', '[.]:80', '[198.18.0.1]:80', 'a b:80', 'a%b:80', '*:80', 'a/b:80');
    fc.assert(
      fc.property(bad, (s) => {
        assert.equal(
          nothingButCode(BAD_LISTEN, () => parseListen(s, '--admin-listen')),
          undefined,
          s,
        );
      }),
    );
  });

  test('what the config file accepts as adminListen, the control plane can listen on', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ambit-listen-prop-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'control.yaml');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          v4,
          v6.map((a) => `[${a}]`),
          fc.domain(),
        ),
        fc.nat(99999),
        async (h, p) => {
          const text = `${h}:${p}`;
          await writeFile(file, `adminListen: ${JSON.stringify(text)}\n`);
          const cfg = nothingButCode('AMBIT_ERR_CONTROL_CONFIG', () => loadControlConfig(file));
          const loaded = await cfg?.catch((err) => {
            if (hasCode(err, 'AMBIT_ERR_CONTROL_CONFIG')) return undefined;
            throw err;
          });
          const listen = nothingButCode(BAD_LISTEN, () => parseListen(text, '--admin-listen'));
          assert.equal(loaded !== undefined, listen !== undefined, `config and flag disagree on ${text}`);
        },
      ),
      { numRuns: 100 },
    );
  });
});
