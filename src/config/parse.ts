// parseManifests: multi-document YAML (or JSON) text in, validated resources and every problem out,
// each problem naming the file, document and line it came from.

import { LineCounter, parseAllDocuments } from 'yaml';
import type { ConfigIssue } from './issues.ts';
import type { Resource } from './resource.ts';
import { validateResource } from './validate.ts';

export interface ParsedManifests {
  /** Valid resources in document order. */
  resources: Resource[];
  /** Every problem: YAML syntax errors and invalid resources. A document with problems yields no resource. */
  errors: ConfigIssue[];
}

/**
 * Parse every document in `text`. Empty documents are skipped; a `kind: List` document (what
 * `kubectl get -o yaml` prints) contributes its `items`. `source` names the input in errors.
 */
export function parseManifests(text: string, source: string): ParsedManifests {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const resources: Resource[] = [];
  const errors: ConfigIssue[] = [];
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
      const result = validateResource(
        item,
        items.length > 1 || item !== value ? `${where}, item ${j}` : where,
      );
      if (result.ok) resources.push(result.resource);
      else errors.push(...result.errors);
    });
  });
  return { resources, errors };
}
