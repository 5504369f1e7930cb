// The error catalogues: every code a folder raises is named in its errors.ts (one `<AREA>_ERRORS`
// object, exported from the folder's index.ts), codes are unique and well formed, and no converted
// folder writes a code as a literal at a throw site.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import * as capture from '../../../src/capture/index.ts';
import * as cli from '../../../src/cli/index.ts';
import * as config from '../../../src/config/index.ts';
import * as control from '../../../src/control/index.ts';
import * as hbone from '../../../src/hbone/index.ts';
import * as identity from '../../../src/identity/index.ts';
import * as lab from '../../../src/lab/index.ts';
import * as os from '../../../src/os/index.ts';
import * as policy from '../../../src/policy/index.ts';
import * as proxy from '../../../src/proxy/index.ts';
import * as samples from '../../../src/samples/index.ts';
import * as telemetry from '../../../src/telemetry/index.ts';
import * as waypoint from '../../../src/waypoint/index.ts';
import * as xds from '../../../src/xds/index.ts';
import * as ztunnel from '../../../src/ztunnel/index.ts';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../../..');
const SRC = join(ROOT, 'src');

/** Each folder with a catalogue: the name of its const object, and the folder's front door (index.ts). */
const CATALOGUES: Record<string, { name: string; front: Record<string, unknown> }> = {
  capture: { name: 'CAPTURE_ERRORS', front: capture },
  cli: { name: 'CLI_ERRORS', front: cli },
  config: { name: 'CONFIG_ERRORS', front: config },
  control: { name: 'CONTROL_ERRORS', front: control },
  hbone: { name: 'HBONE_ERRORS', front: hbone },
  identity: { name: 'IDENTITY_ERRORS', front: identity },
  lab: { name: 'LAB_ERRORS', front: lab },
  os: { name: 'OS_ERRORS', front: os },
  policy: { name: 'POLICY_ERRORS', front: policy },
  proxy: { name: 'PROXY_ERRORS', front: proxy },
  samples: { name: 'SAMPLE_ERRORS', front: samples },
  telemetry: { name: 'TELEMETRY_ERRORS', front: telemetry },
  waypoint: { name: 'WAYPOINT_ERRORS', front: waypoint },
  xds: { name: 'XDS_ERRORS', front: xds },
  ztunnel: { name: 'ZTUNNEL_ERRORS', front: ztunnel },
};

/**
 * Folders not converted yet: they still write codes as literals at their throw sites. Remove a folder
 * from this list when it gets its catalogue (src/<folder>/errors.ts) and loses its literals.
 */
const NOT_CONVERTED: string[] = [];

/**
 * Literal codes allowed, file by file, in converted folders, with why. Each must still occur: drop an
 * entry when its literal goes.
 */
const ALLOWED_LITERALS: Record<string, { codes: string[]; why: string; mustBeIn?: string }> = {
  'src/xds/status.ts': {
    why: 'the gRPC status table names refusals raised by src/control (layer 5), whose catalogue xds (layer 3) may not import',
    mustBeIn: 'CONTROL_ERRORS',
    codes: [
      'AMBIT_ERR_CA_BAD_CSR',
      'AMBIT_ERR_CA_BAD_CSR_SIGNATURE',
      'AMBIT_ERR_CA_NOT_SPIFFE',
      'AMBIT_ERR_CA_FOREIGN_TRUST_DOMAIN',
      'AMBIT_ERR_CA_MULTIPLE_URI_SANS',
      'AMBIT_ERR_CA_NO_URI_SAN',
      'AMBIT_ERR_CA_UNEXPECTED_SAN',
      'AMBIT_ERR_CA_WEAK_KEY',
      'AMBIT_ERR_CA_IDENTITY_MISMATCH',
      'AMBIT_ERR_CA_UNKNOWN_TOKEN',
      'AMBIT_ERR_CA_REVOKED_TOKEN',
      'AMBIT_ERR_CA_EXPIRED_TOKEN',
      'AMBIT_ERR_CA_TOKEN_USED',
      'AMBIT_ERR_CA_UNAUTHENTICATED',
      'AMBIT_ERR_CA_NODE_REVOKED',
      'AMBIT_ERR_CA_IMPERSONATION',
      'AMBIT_ERR_XDS_BAD_REQUEST',
      'AMBIT_ERR_XDS_UNKNOWN_TYPE',
      'AMBIT_ERR_XDS_FIRST_REQUEST_TIMEOUT',
    ],
  },
};

const CODE = /^AMBIT_ERR_[A-Z0-9_]+$/;

function catalogue(folder: string): Record<string, string> {
  const { name, front } = CATALOGUES[folder]!;
  const found = front[name];
  assert.ok(found && typeof found === 'object', `src/${folder}/index.ts does not export ${name}`);
  return found as Record<string, string>;
}

function* files(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

/**
 * The codes written in code (not in comments) in `text`: string and template literals, object keys,
 * any mention of AMBIT_ERR_ outside a `//` or `/* *\/` comment. Each with its line number.
 */
function literalCodes(text: string): Array<{ line: number; code: string }> {
  const out: Array<{ line: number; code: string }> = [];
  let inBlock = false;
  text.split('\n').forEach((raw, i) => {
    let line = raw;
    if (inBlock) {
      const end = line.indexOf('*/');
      if (end < 0) return;
      line = line.slice(end + 2);
      inBlock = false;
    }
    // Drop block comments opened on this line, and a trailing `//` comment (one after whitespace or at the
    // start, so `https://` inside a string is kept).
    line = line.replace(/\/\*.*?\*\//g, '');
    const open = line.search(/(^|\s)\/\*/);
    if (open >= 0) {
      line = line.slice(0, open);
      inBlock = true;
    }
    const comment = line.search(/(^|\s)\/\//);
    if (comment >= 0) line = line.slice(0, comment);
    for (const m of line.matchAll(/AMBIT_ERR_[A-Z0-9_]*/g)) out.push({ line: i + 1, code: m[0] });
  });
  return out;
}

describe('error catalogues', () => {
  it('each folder with a catalogue has src/<folder>/errors.ts and exports it from index.ts', () => {
    for (const [folder, { name }] of Object.entries(CATALOGUES)) {
      const text = readFileSync(join(SRC, folder, 'errors.ts'), 'utf8');
      assert.match(text, new RegExp(`export const ${name} = \\{`), `src/${folder}/errors.ts defines ${name}`);
      catalogue(folder);
    }
  });

  it('every code is AMBIT_ERR_<AREA>_<WHAT> and appears in one catalogue only', () => {
    const owner = new Map<string, string>();
    for (const [folder, { name }] of Object.entries(CATALOGUES)) {
      for (const [key, code] of Object.entries(catalogue(folder))) {
        assert.equal(typeof code, 'string', `${name}.${key} is a string`);
        assert.match(code, CODE, `${name}.${key}`);
        const first = owner.get(code);
        assert.equal(first, undefined, `${code} is in both ${first} and ${name}.${key}`);
        owner.set(code, `${name}.${key}`);
      }
    }
  });

  it('every entry of every catalogue has a doc comment saying when it is raised', () => {
    for (const folder of Object.keys(CATALOGUES)) {
      const lines = readFileSync(join(SRC, folder, 'errors.ts'), 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!/^\s+[A-Z0-9_]+: 'AMBIT_ERR_/.test(line)) return;
        assert.match(
          lines[i - 1] ?? '',
          /\*\/\s*$/,
          `src/${folder}/errors.ts:${i + 1} has no /** ... */ above it`,
        );
      });
    }
  });

  it('no converted folder writes a code as a literal outside its errors.ts', () => {
    const control = new Set(Object.values(catalogue('control')));
    const stray: string[] = [];
    const allowedSeen = new Map<string, Set<string>>();
    for (const file of files(SRC)) {
      const rel = relative(ROOT, file);
      const folder = relative(SRC, file).split('/')[0]!;
      if (file.endsWith('/errors.ts') || NOT_CONVERTED.includes(folder)) continue;
      const allowed = ALLOWED_LITERALS[rel];
      for (const { line, code } of literalCodes(readFileSync(file, 'utf8'))) {
        if (allowed?.codes.includes(code)) {
          if (!allowedSeen.has(rel)) allowedSeen.set(rel, new Set());
          allowedSeen.get(rel)!.add(code);
          continue;
        }
        stray.push(`${rel}:${line}: ${code}`);
      }
    }
    assert.deepEqual(
      stray,
      [],
      `name these codes from the folder's errors.ts (or a lower folder's catalogue) instead of writing them:\n${stray.join('\n')}`,
    );
    for (const [file, { codes, mustBeIn }] of Object.entries(ALLOWED_LITERALS)) {
      const seen = allowedSeen.get(file) ?? new Set();
      const gone = codes.filter((c) => !seen.has(c));
      assert.deepEqual(gone, [], `${file} no longer writes these codes: drop them from ALLOWED_LITERALS`);
      if (mustBeIn === 'CONTROL_ERRORS') {
        const unknown = codes.filter((c) => !control.has(c));
        assert.deepEqual(unknown, [], `${file} names codes CONTROL_ERRORS does not have`);
      }
    }
  });

  it('the scan finds literals it should, and skips comments', () => {
    const sample = [
      "throw new AmbitError('AMBIT_ERR_X_ONE', 'message');",
      `const code = \`AMBIT_ERR_X_\${what}\`;`,
      '  AMBIT_ERR_X_KEY: 404,',
      '/** Throws AMBIT_ERR_X_DOC. */',
      '/**',
      ' * AMBIT_ERR_X_DOC2 when it fails',
      ' */',
      "fetch('https://a'); // AMBIT_ERR_X_TRAILING",
      '/* AMBIT_ERR_X_BLOCK',
      '   AMBIT_ERR_X_BLOCK2 */ f("AMBIT_ERR_X_AFTER");',
    ].join('\n');
    assert.deepEqual(
      literalCodes(sample).map((c) => c.code),
      ['AMBIT_ERR_X_ONE', 'AMBIT_ERR_X_', 'AMBIT_ERR_X_KEY', 'AMBIT_ERR_X_AFTER'],
    );
  });
});
