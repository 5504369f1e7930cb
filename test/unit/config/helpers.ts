// Helpers for the validation tables: build a resource quickly and read back the error paths.

import assert from 'node:assert/strict';
import { type ConfigIssue, type Resource, validateResource } from '../../../src/config/index.ts';

export interface Case {
  name: string;
  doc: unknown;
  /** Expected error paths, in any order; empty means the resource must be valid. */
  paths: string[];
  /** Optional substring each listed path's message must contain. */
  messages?: Record<string, string>;
}

export function runCase(c: Case): Resource | undefined {
  const result = validateResource(c.doc);
  if (c.paths.length === 0) {
    assert.ok(result.ok, `expected valid, got ${JSON.stringify(!result.ok && result.errors, null, 1)}`);
    return result.resource;
  }
  assert.ok(!result.ok, 'expected errors, got a valid resource');
  const paths = result.errors.map((e: ConfigIssue) => e.path).sort();
  assert.deepEqual(paths, [...c.paths].sort(), JSON.stringify(result.errors, null, 1));
  for (const [path, text] of Object.entries(c.messages ?? {})) {
    const issue = result.errors.find((e) => e.path === path);
    assert.ok(
      issue?.message.includes(text),
      `message for ${path} should contain "${text}", got "${issue?.message}"`,
    );
  }
  return undefined;
}

export function res(
  apiVersion: string,
  kind: string,
  name: string,
  spec: unknown,
  extra: Record<string, unknown> = {},
): unknown {
  const { metadata, ...rest } = extra as { metadata?: Record<string, unknown> };
  return {
    apiVersion,
    kind,
    metadata: { name, namespace: 'app', ...metadata },
    ...(spec === undefined ? {} : { spec }),
    ...rest,
  };
}
