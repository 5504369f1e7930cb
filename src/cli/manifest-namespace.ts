// `-n NS` for manifests, as kubectl's: a namespaced document that names no namespace goes into NS, and
// one that names another is refused before anything is sent. Cluster-scoped kinds ignore the flag.
// parseManifests has by then defaulted every namespace to `default`, so the documents are read once
// more for the namespaces they wrote themselves.

import { LineCounter, parseAllDocuments } from 'yaml';
import { type ConfigIssue, kindInfo, type Resource, resourceName } from '../config/index.ts';

/** The namespace one item of a manifest wrote (undefined when none), and where the item is. */
export interface WrittenNamespace {
  namespace: string | undefined;
  source: string;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * One entry per item, in the order parseManifests yields resources for a text it accepted whole:
 * documents in order, empty ones skipped, a `kind: List` contributing its items. Sources are written
 * as parseManifests writes them, so an error names the same document and line.
 */
export function writtenNamespaces(text: string, source: string): WrittenNamespace[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const written: WrittenNamespace[] = [];
  (Array.isArray(docs) ? docs : [docs]).forEach((doc, i) => {
    const offset = doc.contents?.range[0] ?? doc.range[0];
    const where = `${source} (document ${i + 1}, line ${lines.linePos(offset).line})`;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    const isList = isPlainObject(value) && value.kind === 'List';
    const items = isList && Array.isArray(value.items) ? value.items : [value];
    items.forEach((item: unknown, j: number) => {
      const meta = isPlainObject(item) && isPlainObject(item.metadata) ? item.metadata : {};
      written.push({
        namespace: typeof meta.namespace === 'string' ? meta.namespace : undefined,
        source: items.length > 1 || item !== value ? `${where}, item ${j}` : where,
      });
    });
  });
  return written;
}

/** kubectl's words, so that scripts and habits that know them keep working. */
export function namespaceMismatch(written: string, flag: string): string {
  return `the namespace from the provided object "${written}" does not match the namespace "${flag}". You must pass '--namespace=${written}' to perform this operation.`;
}

/**
 * The resources with NS put into each namespaced one that wrote none, or the issues naming each
 * resource whose own namespace is another. `written` is writtenNamespaces of the same text.
 */
export function placeInNamespace(
  resources: readonly Resource[],
  written: readonly WrittenNamespace[],
  namespace: string,
): { resources: Resource[]; issues: ConfigIssue[] } {
  if (resources.length !== written.length) {
    // parseManifests and writtenNamespaces walk a text the same way; differing counts are a bug here.
    throw new Error(`read ${written.length} documents for ${resources.length} resources`);
  }
  const placed: Resource[] = [];
  const issues: ConfigIssue[] = [];
  resources.forEach((resource, i) => {
    const own = written[i]!;
    if (!kindInfo(resource.kind)?.namespaced) placed.push(resource);
    else if (own.namespace === undefined)
      placed.push({ ...resource, metadata: { ...resource.metadata, namespace } } as Resource);
    else if (own.namespace === namespace) placed.push(resource);
    else
      issues.push({
        kind: resource.kind,
        name: resourceName(resource),
        path: 'metadata.namespace',
        message: namespaceMismatch(own.namespace, namespace),
        source: own.source,
      });
  });
  return { resources: placed, issues };
}
