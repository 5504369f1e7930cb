// parseManifests: multi-document YAML (or JSON) text in, validated resources and every problem out,
// each problem naming the file, document and line it came from.

import { LineCounter, parseAllDocuments } from 'yaml';
import type { ConfigIssue } from './issues.ts';
import { kindInfo } from './kinds.ts';
import { type Resource, resourceName } from './resource.ts';
import { validateResource } from './validate.ts';

export interface ParsedManifests {
  /** Valid resources in document order. */
  resources: Resource[];
  /** Every problem: YAML syntax errors and invalid resources. A document with problems yields no resource. */
  errors: ConfigIssue[];
  /** With `namespace`: valid resources that name another namespace (not in `resources`). */
  elsewhere: ConfigIssue[];
}

export interface ParseOptions {
  /**
   * As `kubectl apply -n`: a namespaced resource that names no namespace is put into this one, and one
   * that names another is left out and listed in `elsewhere`. Cluster-scoped kinds are left alone.
   */
  namespace?: string;
}

/** kubectl's words for a resource in another namespace than `-n`, so scripts and habits that know them keep working. */
export function namespaceMismatch(written: string, flag: string): string {
  return `the namespace from the provided object "${written}" does not match the namespace "${flag}". You must pass '--namespace=${written}' to perform this operation.`;
}

/**
 * Parse every document in `text`. Empty documents are skipped; a `kind: List` document (what
 * `kubectl get -o yaml` prints) contributes its `items`. `source` names the input in errors.
 */
export function parseManifests(text: string, source: string, opts: ParseOptions = {}): ParsedManifests {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const resources: Resource[] = [];
  const errors: ConfigIssue[] = [];
  const elsewhere: ConfigIssue[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const offset = doc.contents?.range[0] ?? doc.range[0];
    const where = `${source} (document ${i + 1}, line ${lines.linePos(offset).line})`;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const line = e.linePos?.[0].line ?? lines.linePos(e.pos[0]).line;
        errors.push({
          kind: '',
          name: '',
          path: '',
          message: `YAML syntax: ${e.message.split('\n')[0]}`,
          source: `${source} (document ${i + 1}, line ${line})`,
        });
      }
      return;
    }
    let value: unknown;
    try {
      // An alias bomb (a few lines that expand to millions of nodes) or an alias that names no
      // anchor throws here: report it like a syntax error, never as a raw exception.
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      const message = (err as Error).message.split('\n')[0];
      errors.push({ kind: '', name: '', path: '', message: `YAML: ${message}`, source: where });
      return;
    }
    if (value === null || value === undefined) return;
    const items =
      typeof value === 'object' && !Array.isArray(value) && (value as { kind?: unknown }).kind === 'List'
        ? (value as { items?: unknown }).items
        : [value];
    if (!Array.isArray(items)) {
      errors.push({
        kind: 'List',
        name: '',
        path: 'items',
        message: 'must be a list of resources',
        source: where,
      });
      return;
    }
    items.forEach((item, j) => {
      const at = items.length > 1 || item !== value ? `${where}, item ${j}` : where;
      const { value: placed, written } = inNamespace(item, opts.namespace);
      const result = validateResource(placed, at);
      if (!result.ok) errors.push(...result.errors);
      else if (written === undefined || written === opts.namespace) resources.push(result.resource);
      else
        elsewhere.push({
          kind: result.resource.kind,
          name: resourceName(result.resource),
          path: 'metadata.namespace',
          message: namespaceMismatch(written, opts.namespace!),
          source: at,
        });
    });
  });
  return { resources, errors, elsewhere };
}

/** The item with `namespace` put in when it is namespaced and names none, and the namespace it wrote. */
function inNamespace(item: unknown, namespace: string | undefined): { value: unknown; written?: string } {
  if (namespace === undefined || !isObject(item) || !isObject(item.metadata)) return { value: item };
  if (typeof item.kind !== 'string' || !kindInfo(item.kind)?.namespaced) return { value: item };
  const written = item.metadata.namespace;
  if (written !== undefined)
    return { value: item, written: typeof written === 'string' ? written : undefined };
  return { value: { ...item, metadata: { ...item.metadata, namespace } } };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
