// Kubernetes label selectors as `kubectl -l` and `?labelSelector=` write them: `app=web`, `app==web`,
// `tier!=db`, `env in (a,b)`, `env notin (a)`, `canary`, `!canary`, comma-separated and ANDed.

import { AmbitError } from '../../errors/index.ts';

type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'absent'; key: string };

export type LabelSelector = (labels: Readonly<Record<string, string>> | undefined) => boolean;

const KEY = '[A-Za-z0-9./_-]+';
const VALUE = '[A-Za-z0-9._-]*';
const EQ = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`);
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s+\\(([^)]*)\\)$`);
const EXISTS = new RegExp(`^(!?)(${KEY})$`);

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

export function parseLabelSelector(text: string): LabelSelector {
  const reqs: Requirement[] = [];
  if (text.trim() !== '') {
    for (const part of splitTop(text)) {
      let m = EQ.exec(part);
      if (m) {
        reqs.push({ op: m[2] === '!=' ? 'neq' : 'eq', key: m[1]!, value: m[3]! });
        continue;
      }
      m = SET.exec(part);
      if (m) {
        const values = m[3]!.split(',').map((v) => v.trim());
        reqs.push({ op: m[2] === 'in' ? 'in' : 'notin', key: m[1]!, values });
        continue;
      }
      m = EXISTS.exec(part);
      if (m) {
        reqs.push({ op: m[1] === '!' ? 'absent' : 'exists', key: m[2]! });
        continue;
      }
      throw new AmbitError(
        'AMBIT_ERR_API_BAD_SELECTOR',
        `label selector "${text}": cannot parse "${part}"; write key=value, key!=value, key in (a,b), key or !key`,
      );
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
