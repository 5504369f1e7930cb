// Turns zod's issues into Ambit's: one entry per problem with the resource's kind and name and a
// field path written as operators read it (`spec.rules[0].from[0].source.principals[1]`).

import type { z } from 'zod';

/** One problem with one resource. `name` is `namespace/name` (or `name` when cluster-scoped). */
export interface ConfigIssue {
  kind: string;
  name: string;
  /** Field path, such as `spec.rules[0].from[0].source.principals[1]`; '' for the whole document. */
  path: string;
  message: string;
  /** Where the resource came from: `file.yaml (document 2, line 14)`. */
  source?: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['spec', 'rules', 0, 'from']` → `spec.rules[0].from`; odd keys are quoted: `labels['istio.io/x']`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && IDENTIFIER.test(part)) out += out === '' ? part : `.${part}`;
    else out += `['${String(part)}']`;
  }
  return out;
}

const CLIP = 300;

function clip(text: string): string {
  return text.length <= CLIP ? text : `${text.slice(0, CLIP)}... (${text.length - CLIP} more characters)`;
}

/** The issue with its name, path and message cut to a few hundred characters (keys can be megabytes). */
export function clipIssue(issue: ConfigIssue): ConfigIssue {
  return { ...issue, name: clip(issue.name), path: clip(issue.path), message: clip(issue.message) };
}

/** One line per issue: `AuthorizationPolicy foo/bar: spec.action: must be one of ...`. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.source ? ` (${issue.source})` : '';
  const path = issue.path === '' ? '' : `${issue.path}: `;
  return `${issue.kind || 'resource'} ${issue.name || '<unnamed>'}${where}: ${path}${issue.message}`;
}

interface SchemaDef {
  type: string;
  shape?: Record<string, { _zod: { def: SchemaDef } }>;
  innerType?: { _zod: { def: SchemaDef } };
  element?: { _zod: { def: SchemaDef } };
  valueType?: { _zod: { def: SchemaDef } };
  in?: { _zod: { def: SchemaDef } };
  options?: { _zod: { def: SchemaDef } }[];
}

/** The field names an object schema allows at `path`, found by walking the schema; [] if unknown. */
function allowedKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let def: SchemaDef | undefined = (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
  const unwrap = (d: SchemaDef | undefined): SchemaDef | undefined => {
    let cur = d;
    while (
      cur &&
      (cur.type === 'optional' || cur.type === 'nullable' || cur.type === 'default' || cur.type === 'pipe')
    ) {
      cur = (cur.innerType ?? cur.in)?._zod.def;
    }
    return cur;
  };
  for (const part of path) {
    def = unwrap(def);
    if (!def) return [];
    if (def.type === 'object') def = def.shape?.[String(part)]?._zod.def;
    else if (def.type === 'array') def = def.element?._zod.def;
    else if (def.type === 'record') def = def.valueType?._zod.def;
    else return [];
  }
  def = unwrap(def);
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function unknownFieldMessage(key: string, allowed: string[]): string {
  const lower = key.toLowerCase();
  const close = allowed
    .map((k) => ({ k, d: k.toLowerCase() === lower ? 0 : editDistance(lower, k.toLowerCase()) }))
    .filter((c) => c.d <= Math.max(2, Math.floor(key.length / 3)))
    .sort((x, y) => x.d - y.d)[0];
  if (close) return `unknown field "${key}"; did you mean "${close.k}"?`;
  return allowed.length > 0
    ? `unknown field "${key}"; allowed fields are ${allowed.join(', ')}`
    : `unknown field "${key}"`;
}

function cleanMessage(issue: z.core.$ZodIssue): string {
  const msg = issue.message;
  if (issue.code === 'invalid_type' && /received undefined$/.test(msg)) return 'is required';
  if (issue.code === 'invalid_type')
    return msg.replace(/^Invalid input: /, '').replace(/, received /, ', got ');
  if (issue.code === 'invalid_value') {
    return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return msg.replace(/^Invalid input: /, '');
}

/** Ambit issues for every zod issue, with the resource's kind and name. */
export function fromZodIssues(
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
  kind: string,
  name: string,
  source: string | undefined,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const base = source === undefined ? {} : { source };
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeys(schema, issue.path);
      for (const key of issue.keys) {
        out.push({
          kind,
          name,
          path: formatPath([...issue.path, key]),
          message: unknownFieldMessage(key, allowed),
          ...base,
        });
      }
      continue;
    }
    out.push({ kind, name, path: formatPath(issue.path), message: cleanMessage(issue), ...base });
  }
  return out;
}
