// Request bodies of the admin API: JSON, refused before it is turned into objects when it nests
// deeper than a limit or repeats a key in one object (the YAML path refuses duplicates too, and
// JSON.parse would silently keep the last one).
//
// Why a scan and not a parser: JSON.parse cannot report duplicate keys (a reviver sees the object
// after they collapsed), and parsing JSON through the `yaml` package with `uniqueKeys` cost 3.7 s and
// 490 MB for a 3.6 MB apply, itself a memory amplifier. This pass only follows strings, brackets and
// commas, allocating nothing but the keys; JSON.parse still parses and validates the text.

import type { z } from 'zod';
import { formatPath } from '../../config/index.ts';
import { AmbitError } from '../../errors/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';

export const MAX_JSON_DEPTH = 100;

export const API_INVALID = CONTROL_ERRORS.API_INVALID;

interface Frame {
  array: boolean;
  index: number;
  key: string | undefined;
  keys: Set<string> | undefined;
  expectKey: boolean;
}

/** JSON text into a value; throws AMBIT_ERR_API_INVALID (422) naming the field path for depth and duplicates. */
export function parseJsonBody(text: string, maxDepth = MAX_JSON_DEPTH): unknown {
  checkStructure(text, maxDepth);
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new AmbitError(
      CONTROL_ERRORS.API_BAD_REQUEST,
      `the request body is not valid JSON: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

function checkStructure(text: string, maxDepth: number): void {
  const stack: Frame[] = [];
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack.at(-1);
      if (top && !top.array && top.expectKey) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? decode(raw) : raw;
        if (key !== undefined) {
          if (top.keys!.has(key))
            throw invalid(pathOf(stack, key), `the key "${key}" appears twice in the same object`);
          top.keys!.add(key);
          top.key = key;
        }
        top.expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= maxDepth) {
        throw invalid(pathOf(stack), `the request body nests deeper than ${maxDepth} levels, the limit`);
      }
      const array = c === 0x5b;
      stack.push({ array, index: 0, key: undefined, keys: array ? undefined : new Set(), expectKey: !array });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack.at(-1);
      if (top?.array) top.index++;
      else if (top) top.expectKey = true;
    }
  }
}

/** The index of the quote that closes the string opened at `start` (or the end of the text). */
function stringEnd(text: string, start: number): number {
  let j = start;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) return text.length;
    let slashes = 0;
    for (let k = j - 1; text.charCodeAt(k) === 0x5c; k--) slashes++;
    if (slashes % 2 === 0) return j;
  }
}

function decode(raw: string): string | undefined {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return undefined; // malformed: JSON.parse of the whole body reports it
  }
}

function pathOf(stack: Frame[], last?: string): string {
  let path = '';
  const segment = (key: string) => (/^[A-Za-z_$][\w$-]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
  stack.forEach((f, i) => {
    if (f.array) path += `[${f.index}]`;
    else {
      const key = i === stack.length - 1 && last !== undefined ? last : f.key;
      if (key !== undefined) path += segment(key);
    }
  });
  return path.replace(/^\./, '');
}

/** A 422 naming the field: Kubernetes' `Invalid` Status with one cause. */
export function invalid(path: string, message: string): AmbitError {
  return invalidFields([{ path, message }]);
}

/** A 422 with one cause per field; the message names the first. */
export function invalidFields(issues: ReadonlyArray<{ path: string; message: string }>): AmbitError {
  const first = issues[0] ?? { path: '', message: 'is invalid' };
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return new AmbitError(API_INVALID, `${first.path || 'the request body'}: ${first.message}${more}`, {
    detail: { errors: issues.map((i) => ({ kind: '', name: '', path: i.path, message: i.message })) },
  });
}

/** Checks a parsed body against a zod schema: its data, or a 422 naming every bad field. */
export function validateBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  throw invalidFields(r.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })));
}
