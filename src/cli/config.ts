// `ambit apply`, `ambit get`, `ambit delete`: kubectl's verbs against the control plane's admin API.

import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import {
  CONFIG_ERRORS,
  DEFAULT_NAMESPACE,
  formatIssue,
  type KindInfo,
  kindByCliName,
  parseManifests,
  type Resource,
  resourceNamespace,
} from '../config/index.ts';
import { type ApplyResultLike, CONTROL_ERRORS, type StoredObject } from '../control/index.ts';
import { AmbitError } from '../errors/index.ts';
import { type AdminClient, adminClient, serverOption, tokenOption } from './client.ts';
import { CLI_ERRORS } from './errors.ts';
import { table } from './output.ts';
import { parseNamespace } from './waypoint.ts';

function client(cmd: Command): AdminClient {
  return adminClient(cmd.opts<{ server?: string; token?: string }>());
}

/** A manifest larger than this is refused before it is read (a YAML document expands in memory). */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

function tooLarge(name: string, size: number | string): AmbitError {
  return new AmbitError(
    CLI_ERRORS.MANIFEST_TOO_LARGE,
    `${name} is ${size} bytes; manifests are refused above ${MAX_MANIFEST_BYTES} bytes (8 MiB): split it`,
  );
}

/** Reads a file after checking its size, so a huge manifest is refused before it costs memory. */
async function readBounded(path: string): Promise<string> {
  const info = await stat(path);
  if (info.size > MAX_MANIFEST_BYTES) throw tooLarge(path, info.size);
  return readFile(path, 'utf8');
}

/**
 * Reads `-f` sources: a file, every .yaml/.yml/.json file of a directory (sorted), or `-` for stdin.
 * With `namespace` (-n), as kubectl: namespaced resources that name none go into it, and any that
 * names another refuses the whole read.
 */
export async function readManifests(sources: string[], namespace?: string): Promise<Resource[]> {
  const texts: Array<{ name: string; text: string }> = [];
  for (const source of sources) {
    if (source === '-') {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of process.stdin) {
        size += (c as Buffer).length;
        if (size > MAX_MANIFEST_BYTES) throw tooLarge('<stdin>', `more than ${MAX_MANIFEST_BYTES}`);
        chunks.push(c as Buffer);
      }
      texts.push({ name: '<stdin>', text: Buffer.concat(chunks).toString('utf8') });
      continue;
    }
    const info = await stat(source).catch((cause) => {
      throw new AmbitError(CLI_ERRORS.NO_FILE, `cannot read ${source}: ${(cause as Error).message}`, {
        cause,
      });
    });
    if (info.isDirectory()) {
      const names = (await readdir(source))
        .filter((n) => ['.yaml', '.yml', '.json'].includes(extname(n)))
        .sort();
      for (const n of names) texts.push({ name: join(source, n), text: await readBounded(join(source, n)) });
    } else {
      if (info.size > MAX_MANIFEST_BYTES) throw tooLarge(source, info.size);
      texts.push({ name: source, text: await readFile(source, 'utf8') });
    }
  }
  const resources: Resource[] = [];
  const problems: string[] = [];
  const elsewhere: string[] = [];
  for (const { name, text } of texts) {
    const parsed = parseManifests(text, name, { namespace });
    problems.push(...parsed.errors.map(formatIssue));
    resources.push(...parsed.resources);
    elsewhere.push(...parsed.elsewhere.map(formatIssue));
  }
  if (problems.length > 0) {
    throw new AmbitError(
      CONFIG_ERRORS.INVALID,
      `nothing was applied; fix these first:\n  ${problems.join('\n  ')}`,
    );
  }
  if (elsewhere.length > 0) {
    throw new AmbitError(
      CLI_ERRORS.NAMESPACE_MISMATCH,
      `nothing was sent; ${elsewhere.length === 1 ? 'a resource names' : 'resources name'} another namespace than -n:\n  ${elsewhere.join('\n  ')}`,
    );
  }
  if (resources.length === 0)
    throw new AmbitError(CLI_ERRORS.NO_RESOURCES, `no resources found in ${sources.join(', ')}`);
  return resources;
}

function printResults(results: ApplyResultLike[], dryRun: boolean): void {
  for (const r of results) {
    const info = kindByCliName(r.kind);
    const name = r.name.includes('/') ? r.name.split('/')[1] : r.name;
    console.log(`${(info?.kind ?? r.kind).toLowerCase()}/${name} ${r.action}${dryRun ? ' (dry run)' : ''}`);
  }
}

function requireKind(name: string): KindInfo {
  const info = kindByCliName(name);
  if (!info) throw new AmbitError(CONTROL_ERRORS.API_UNKNOWN_KIND, `unknown kind "${name}"`);
  return info;
}

function collectionPath(info: KindInfo, namespace: string | undefined): string {
  const base = info.group === '' ? '/api/v1' : `/apis/${info.group}/${info.version}`;
  return info.namespaced && namespace !== undefined
    ? `${base}/namespaces/${namespace}/${info.plural}`
    : `${base}/${info.plural}`;
}

export function applyCommand(): Command {
  return new Command('apply')
    .description('create or update resources from YAML or JSON (multi-document; a directory; - for stdin)')
    .requiredOption('-f, --filename <path...>', 'file, directory or - (repeatable)')
    .option(
      '-n, --namespace <ns>',
      'namespace for the resources that name none; refuse any that names another',
      parseNamespace,
    )
    .option('--dry-run', 'validate and show what would change, change nothing', false)
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(async (opts: { filename: string[]; namespace?: string; dryRun: boolean }, cmd: Command) => {
      const objects = await readManifests(opts.filename, opts.namespace);
      const { results } = await client(cmd).call<{ results: ApplyResultLike[] }>('POST', '/ambit/v1/apply', {
        objects,
        dryRun: opts.dryRun,
      });
      printResults(results, opts.dryRun);
    });
}

export function deleteCommand(): Command {
  return new Command('delete')
    .description('delete resources named in files, or KIND NAME…')
    .argument('[kind]', 'kind, plural or short name (svc, ap, pa, we …)')
    .argument('[names...]', 'resource names')
    .option('-f, --filename <path...>', 'delete the resources in these files')
    .option(
      '-n, --namespace <ns>',
      `namespace of KIND NAME (default: ${DEFAULT_NAMESPACE}); with -f, for the resources that name none`,
      parseNamespace,
    )
    .option('--dry-run', 'show what would be deleted, delete nothing', false)
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(
      async (
        kind: string | undefined,
        names: string[],
        opts: { filename?: string[]; namespace?: string; dryRun: boolean },
        cmd: Command,
      ) => {
        let refs: Array<{ kind: string; namespace?: string; name: string }>;
        if (opts.filename) {
          refs = (await readManifests(opts.filename, opts.namespace)).map((r) => ({
            kind: r.kind,
            namespace: resourceNamespace(r),
            name: r.metadata.name,
          }));
        } else {
          if (!kind || names.length === 0)
            throw new AmbitError(CLI_ERRORS.USAGE, 'give -f FILE, or a kind and one or more names');
          const info = requireKind(kind);
          refs = names.map((name) => ({
            kind: info.kind,
            namespace: info.namespaced ? (opts.namespace ?? DEFAULT_NAMESPACE) : undefined,
            name,
          }));
        }
        const { results } = await client(cmd).call<{ results: ApplyResultLike[] }>(
          'POST',
          '/ambit/v1/delete',
          { refs, dryRun: opts.dryRun },
        );
        printResults(results, opts.dryRun);
        if (results.some((r) => r.action === 'not found')) process.exitCode = 1;
      },
    );
}

export function getCommand(
  views: Record<string, (cmd: Command, opts: GetOptions) => Promise<void>> = {},
): Command {
  return new Command('get')
    .description('list or show resources (and the derived views: workloads, services, issues)')
    .argument('<kind>', 'kind, plural or short name')
    .argument('[name]', 'one resource')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('-A, --all-namespaces', 'every namespace', false)
    .option('-l, --selector <selector>', 'label selector (app=web,tier!=db)')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'wide', 'yaml', 'json'])
        .default('table'),
    )
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(async (kind: string, name: string | undefined, opts: GetOptions, cmd: Command) => {
      const view = views[kind.toLowerCase()];
      if (view) return view(cmd, { ...opts, name });
      const info = requireKind(kind);
      const ns = info.namespaced && !opts.allNamespaces ? opts.namespace : undefined;
      const api = client(cmd);
      let items: StoredObject[];
      if (name) {
        items = [
          await api.call<StoredObject>(
            'GET',
            `${collectionPath(info, info.namespaced ? opts.namespace : undefined)}/${name}`,
          ),
        ];
      } else {
        const q = opts.selector ? `?labelSelector=${encodeURIComponent(opts.selector)}` : '';
        items = (await api.call<{ items: StoredObject[] }>('GET', `${collectionPath(info, ns)}${q}`)).items;
      }
      printObjects(items, info, opts, name !== undefined);
    });
}

export interface GetOptions {
  name?: string;
  namespace: string;
  allNamespaces: boolean;
  selector?: string;
  output: 'table' | 'wide' | 'yaml' | 'json';
}

function printObjects(items: StoredObject[], info: KindInfo, opts: GetOptions, single: boolean): void {
  if (opts.output === 'json') {
    console.log(JSON.stringify(single ? items[0] : { apiVersion: 'v1', kind: 'List', items }, null, 2));
    return;
  }
  if (opts.output === 'yaml') {
    console.log(stringify(single ? items[0] : { apiVersion: 'v1', kind: 'List', items }).trimEnd());
    return;
  }
  if (items.length === 0) {
    console.error(
      info.namespaced && !opts.allNamespaces
        ? `No resources found in ${opts.namespace} namespace.`
        : 'No resources found.',
    );
    return;
  }
  const showNs = info.namespaced && opts.allNamespaces;
  const headers = [
    ...(showNs ? ['NAMESPACE'] : []),
    'NAME',
    'AGE',
    ...(opts.output === 'wide' ? ['GENERATION', 'LABELS', 'CONDITIONS'] : []),
  ];
  const rows = items.map((o) => [
    ...(showNs ? [String((o.metadata as { namespace?: string }).namespace ?? '')] : []),
    o.metadata.name,
    age(o.metadata.creationTimestamp),
    ...(opts.output === 'wide'
      ? [
          String(o.metadata.generation),
          Object.entries(o.metadata.labels ?? {})
            .map(([k, v]) => `${k}=${v}`)
            .join(',') || '<none>',
          (o.status?.conditions ?? []).map((c) => `${c.type}=${c.status}(${c.reason})`).join(',') || '<none>',
        ]
      : []),
  ]);
  console.log(table(headers, rows));
}

/** kubectl's compact age: 45s, 3m, 2h, 5d. */
export function age(timestamp: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
