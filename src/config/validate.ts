// validateResource: one untyped object in, either the typed resource (with defaults applied and
// its status conditions) or every problem found, each naming kind, name and field path.

import { AmbitError } from '../errors/index.ts';
import { CONFIG_ERRORS } from './errors.ts';
import { type ConfigIssue, clipIssue, formatIssue, formatPath, fromZodIssues } from './issues.ts';
import { KINDS, kindInfo } from './kinds.ts';
import type { Condition } from './meta.ts';
import type { Resource } from './resource.ts';
import { statusConditions } from './status.ts';

export const DEFAULT_NAMESPACE = 'default';

/** How deep a resource may nest (the resource itself is level 0, `spec` level 1). */
export const MAX_DEPTH = 64;

/**
 * Values (objects, arrays, scalars) one resource may hold. Checked before zod walks it, which spends
 * tens of microseconds and several issues per bad value: 400,000 bad labels in one 8 MB object took
 * 26 s of the control plane's event loop, 1.5 GB and ended in a stack overflow (500).
 */
export const MAX_VALUES = 10_000;

/**
 * How many values (objects, arrays, scalars, the root included) `value` holds, counting no further than
 * `limit` (it stops there, so a huge input costs no more than the limit). Iterative: never recurses.
 */
export function countValues(value: unknown, limit: number): number {
  let count = 1;
  const stack: object[] = typeof value === 'object' && value !== null ? [value] : [];
  while (stack.length > 0 && count <= limit) {
    const node = stack.pop()!;
    for (const key of Object.keys(node)) {
      if (++count > limit) return count;
      const child = (node as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) stack.push(child);
    }
  }
  return count;
}

/** An error reports this many issues and counts the rest, so a huge bad apply gets a small answer. */
export const MAX_REPORTED_ISSUES = 100;

export type ValidationResult =
  | { ok: true; resource: Resource; conditions: Condition[] }
  | { ok: false; errors: ConfigIssue[] };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The name errors use before the resource is known to be valid: `namespace/name` where possible. */
function looseName(obj: Record<string, unknown>, namespaced: boolean): string {
  const meta = isPlainObject(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '<unnamed>';
  if (!namespaced) return name;
  const ns = typeof meta.namespace === 'string' ? meta.namespace : DEFAULT_NAMESPACE;
  return `${ns}/${name}`;
}

/**
 * The first way `value` is too large: nested `depth` levels deep, or holding more than `values`
 * values (the path is then the object or array where the count ran over). Iterative, so it never
 * recurses, and it stops as soon as it has an answer.
 */
export function tooLarge(
  value: unknown,
  depth = MAX_DEPTH,
  values = MAX_VALUES,
): { why: 'depth' | 'values'; path: PropertyKey[] } | undefined {
  const stack: Array<{ value: object; path: PropertyKey[] }> = [];
  if (typeof value === 'object' && value !== null) stack.push({ value, path: [] });
  let count = 1;
  while (stack.length > 0) {
    const { value: node, path } = stack.pop()!;
    if (path.length >= depth) return { why: 'depth', path };
    const isArray = Array.isArray(node);
    for (const key of Object.keys(node)) {
      if (++count > values) return { why: 'values', path };
      const child = (node as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null)
        stack.push({ value: child, path: [...path, isArray ? Number(key) : key] });
    }
  }
  return undefined;
}

/**
 * Validate one resource. Unknown kinds, a wrong apiVersion for the kind, unknown fields and bad
 * values are all errors. On success the namespace defaults to `default` (namespaced kinds), the
 * apiVersion is the kind's current one, and any status on input is replaced by fresh conditions.
 */
export function validateResource(obj: unknown, source?: string): ValidationResult {
  const at = source === undefined ? {} : { source };
  if (!isPlainObject(obj)) {
    return {
      ok: false,
      errors: [
        {
          kind: '',
          name: '',
          path: '',
          message: 'a resource must be a mapping with apiVersion, kind, metadata and spec',
          ...at,
        },
      ],
    };
  }
  const kindName = obj.kind;
  const info = typeof kindName === 'string' ? kindInfo(kindName) : undefined;
  if (!info) {
    const known = KINDS.map((k) => k.kind).join(', ');
    const message =
      typeof kindName === 'string'
        ? `unknown kind "${kindName}"; Ambit accepts ${known}`
        : `is required; one of ${known}`;
    return {
      ok: false,
      errors: [
        {
          kind: typeof kindName === 'string' ? kindName : '',
          name: looseName(obj, true),
          path: 'kind',
          message,
          ...at,
        },
      ],
    };
  }
  const name = looseName(obj, info.namespaced);
  const large = tooLarge(obj);
  if (large) {
    const issue = {
      kind: info.kind,
      name,
      path: formatPath(large.path),
      message:
        large.why === 'depth'
          ? `is nested more than ${MAX_DEPTH} levels deep; Ambit refuses deeper resources`
          : `makes the resource hold more than ${MAX_VALUES} values; Ambit refuses larger resources`,
      ...at,
    };
    return { ok: false, errors: [clipIssue(issue)] };
  }
  const errors: ConfigIssue[] = [];
  if (typeof obj.apiVersion !== 'string' || !info.acceptedApiVersions.includes(obj.apiVersion)) {
    const got = typeof obj.apiVersion === 'string' ? `"${obj.apiVersion}"` : 'nothing';
    errors.push({
      kind: info.kind,
      name,
      path: 'apiVersion',
      message: `${info.kind} needs apiVersion ${info.acceptedApiVersions.join(' or ')}, got ${got}`,
      ...at,
    });
  }
  const input: Record<string, unknown> = { ...obj, apiVersion: info.apiVersion };
  if (isPlainObject(obj.metadata)) {
    const meta = { ...obj.metadata };
    if (!info.namespaced && meta.namespace !== undefined) {
      errors.push({
        kind: info.kind,
        name,
        path: 'metadata.namespace',
        message: `${info.kind} is cluster-scoped; remove metadata.namespace`,
        ...at,
      });
      delete meta.namespace;
    }
    if (info.namespaced && meta.namespace === undefined) meta.namespace = DEFAULT_NAMESPACE;
    input.metadata = meta;
  }
  const parsed = info.schema.safeParse(input);
  if (!parsed.success)
    errors.push(...fromZodIssues(info.schema, parsed.error.issues, info.kind, name, source));
  if (errors.length > 0 || !parsed.success) return { ok: false, errors };
  const resource = parsed.data as Resource;
  delete (resource as { status?: unknown }).status;
  return { ok: true, resource, conditions: statusConditions(resource) };
}

/** Thrown by `assertValid` and by callers that refuse a whole batch. */
export const CONFIG_INVALID = CONFIG_ERRORS.INVALID;

/**
 * An AmbitError listing the first MAX_REPORTED_ISSUES issues, one per line (each clipped), and how
 * many more there were; `detail.errors` holds the listed ones for machine readers and
 * `detail.omitted` the count of the rest. `omitted` adds issues the caller counted but did not keep.
 */
export function invalidConfigError(errors: readonly ConfigIssue[], omitted = 0): AmbitError {
  const listed = errors.slice(0, MAX_REPORTED_ISSUES).map(clipIssue);
  const rest = errors.length - listed.length + omitted;
  const total = listed.length + rest;
  const lines = listed.map(formatIssue);
  if (rest > 0) lines.push(`... and ${rest} more (only the first ${listed.length} are listed)`);
  const head = total === 1 ? 'invalid resource' : `${total} problems in the configuration`;
  return new AmbitError(CONFIG_INVALID, `${head}; fix these and apply again:\n  ${lines.join('\n  ')}`, {
    detail: { errors: listed, omitted: rest },
  });
}

/** The typed resource, or throw AMBIT_ERR_CONFIG_INVALID naming every problem. */
export function assertValid(obj: unknown, source?: string): Resource {
  const result = validateResource(obj, source);
  if (!result.ok) throw invalidConfigError(result.errors);
  return result.resource;
}
