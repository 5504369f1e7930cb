// Kubernetes label selectors as `kubectl -l` and `?labelSelector=` write them: `app=web`, `app==web`,
// `tier!=db`, `env in (a,b)`, `env notin (a)`, `canary`, `!canary`, comma-separated and ANDed.

import { isLabelKey, isLabelValue } from '../../config/index.ts';
import { AmbitError } from '../../errors/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';

type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'absent'; key: string };

export type LabelSelector = (labels: Readonly<Record<string, string>> | undefined) => boolean;

// A word is anything up to an operator; whether it is a valid key or value is checked afterwards, so
// the error can say which word is wrong rather than only that the requirement did not parse.
const WORD = '[^\\s=!(),]+';
const EQ = new RegExp(`^(${WORD})\\s*(==|=|!=)\\s*(${WORD})?$`);
const SET = new RegExp(`^(${WORD})\\s+(in|notin)\\s*\\((.*)\\)$`);
const EXISTS = new RegExp(`^(!?)\\s*(${WORD})$`);

/** Splits on commas that are not inside `( … )`. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

function bad(text: string, why: string): AmbitError {
  return new AmbitError(CONTROL_ERRORS.API_BAD_SELECTOR, `label selector ${JSON.stringify(text)}: ${why}`, {
    detail: { labelSelector: text },
  });
}

/** A requirement of `part`, or undefined when it has none of the selector's shapes. */
function parseRequirement(part: string): Requirement | undefined {
  let m = EQ.exec(part);
  if (m) return { op: m[2] === '!=' ? 'neq' : 'eq', key: m[1]!, value: m[3] ?? '' };
  m = SET.exec(part);
  if (m) {
    const values = m[3]!.split(',').map((v) => v.trim());
    return { op: m[2] === 'in' ? 'in' : 'notin', key: m[1]!, values };
  }
  m = EXISTS.exec(part);
  if (m) return { op: m[1] === '!' ? 'absent' : 'exists', key: m[2]! };
  return undefined;
}

/** Checks keys and values as Kubernetes does: a selector naming an impossible label is a typo, not a query. */
function checkRequirement(text: string, r: Requirement): Requirement {
  if (!isLabelKey(r.key)) {
    throw bad(
      text,
      `"${r.key}" is not a label key (an optional DNS subdomain and "/", then at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)`,
    );
  }
  const values =
    r.op === 'eq' || r.op === 'neq' ? [r.value] : r.op === 'in' || r.op === 'notin' ? r.values : [];
  if ((r.op === 'in' || r.op === 'notin') && values.length === 1 && values[0] === '') {
    throw bad(text, `the set of values for "${r.key} ${r.op}" is empty; write ${r.key} ${r.op} (a,b)`);
  }
  for (const v of values) {
    if (!isLabelValue(v)) {
      throw bad(
        text,
        `"${v}" is not a label value (at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit)`,
      );
    }
  }
  return r;
}

export function parseLabelSelector(text: string): LabelSelector {
  const reqs: Requirement[] = [];
  if (text.trim() !== '') {
    for (const part of splitTop(text)) {
      const r = parseRequirement(part);
      if (r === undefined) {
        throw bad(text, `cannot parse "${part}"; write key=value, key!=value, key in (a,b), key or !key`);
      }
      reqs.push(checkRequirement(text, r));
    }
  }
  return (labels) => reqs.every((r) => matches(r, labels ?? {}));
}

function matches(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const v = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
  switch (r.op) {
    case 'eq':
      return v === r.value;
    case 'neq':
      return v !== r.value;
    case 'in':
      return v !== undefined && r.values.includes(v);
    case 'notin':
      return v === undefined || !r.values.includes(v);
    case 'exists':
      return v !== undefined;
    case 'absent':
      return v === undefined;
  }
}
