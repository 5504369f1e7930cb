// Regular expressions from configuration (route matches, rate-limit selectors) as Envoy runs them: RE2
// semantics, matched against the whole value, and never slower than linear. V8 backtracks, so a pattern
// such as `(a+)+b` could stall a proxy for minutes on one header; V8's linear-time engine takes over any
// match that backtracks too much (`--enable-experimental-regexp-engine-on-excessive-backtracks`). It
// handles every pattern that validation lets through: lookaround and backreferences, which it cannot
// run, are refused at apply, as RE2 refuses them.

import { setFlagsFromString } from 'node:v8';

let linear = false;

/** `source` as a whole-value matcher that runs in linear time (Envoy's `safe_regex` full match). */
export function fullMatchRegExp(source: string): RegExp {
  if (!linear) {
    setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
    linear = true;
  }
  return new RegExp(`^(?:${source})$`);
}

/**
 * Why `pattern` cannot be a regular expression of the configuration (a route match, a selector), or undefined when it can. Envoy runs RE2,
 * which has neither lookaround nor backreferences and never backtracks; the waypoint runs V8's, whose
 * linear-time fallback cannot run those constructs, so they are refused, and so is a repeated group that itself
 * repeats (`(a+)+`), the shape that takes exponential time on a hostile header.
 */
export function regexProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern);
  } catch (err) {
    return `is not a valid regular expression: ${(err as Error).message}`;
  }
  // Each open group: whether it holds a quantifier yet.
  const groups: boolean[] = [];
  let inClass = false;
  let lastGroupRepeats = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    const afterGroup = lastGroupRepeats;
    lastGroupRepeats = false;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (/[1-9]/.test(next) || (next === 'k' && pattern[i + 2] === '<'))
        return 'uses a backreference, which RE2 (Envoy) does not support; match the value without it';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') {
      if (/^\(\?<?[=!]/.test(pattern.slice(i, i + 4)))
        return 'uses a lookahead or lookbehind, which RE2 (Envoy) does not support';
      groups.push(false);
    } else if (c === ')') {
      lastGroupRepeats = groups.pop() ?? false;
      // A group holding a quantifier makes its enclosing group hold one too.
      if (lastGroupRepeats && groups.length > 0) groups[groups.length - 1] = true;
    } else if (c === '*' || c === '+' || c === '?' || c === '{') {
      const repeats = c !== '?' && !(c === '{' && /^\{\d+\}/.test(pattern.slice(i)));
      if (afterGroup && repeats)
        return 'repeats a group that itself repeats (such as (a+)+), which can take exponential time; simplify it';
      if (groups.length > 0) groups[groups.length - 1] = true;
    }
  }
  return undefined;
}
