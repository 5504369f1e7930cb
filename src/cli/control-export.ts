// `ambit control export` and `ambit control import`: a mesh moved from one store to another (the
// embedded store and etcd, either way) with every resource's uid and timestamps and every Service's
// VIP kept, through the admin API of the control plane on each side.

import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { parse, stringify } from 'yaml';
import { AmbitError } from '../errors/index.ts';
import { adminClient, serverOption, tokenOption } from './client.ts';
import { CLI_ERRORS } from './errors.ts';

/** An export is read whole; this bounds what a mistaken `-f` can make the CLI hold. */
const MAX_EXPORT_BYTES = 256 * 1024 * 1024;

async function readSource(source: string): Promise<string> {
  if (source !== '-') {
    return readFile(source, 'utf8').catch((cause: Error) => {
      throw new AmbitError(CLI_ERRORS.NO_FILE, `cannot read ${source}: ${cause.message}`, { cause });
    });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > MAX_EXPORT_BYTES)
      throw new AmbitError(CLI_ERRORS.USAGE, `the export on stdin is larger than ${MAX_EXPORT_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function exportCommand(): Command {
  return new Command('export')
    .description(
      'print every resource as stored, and the VIP allocations, to move the mesh to another store (`ambit control import`)',
    )
    .addOption(new Option('-o, --output <format>', 'yaml or json').choices(['yaml', 'json']).default('yaml'))
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(async (opts: { output: 'yaml' | 'json'; server?: string; token?: string }) => {
      const doc = await adminClient(opts).call<unknown>('GET', '/ambit/v1/export');
      console.log(opts.output === 'json' ? JSON.stringify(doc, null, 2) : stringify(doc).trimEnd());
    });
}

export function importCommand(): Command {
  return new Command('import')
    .description(
      'write an export into this control plane, whose store must hold no resource yet: uids, timestamps and VIPs are kept',
    )
    .requiredOption('-f, --filename <file>', 'what `ambit control export` wrote (YAML or JSON; - for stdin)')
    .addOption(serverOption())
    .addOption(tokenOption())
    .action(async (opts: { filename: string; server?: string; token?: string }) => {
      const text = await readSource(opts.filename);
      let doc: unknown;
      try {
        doc = parse(text, { maxAliasCount: 100 });
      } catch (cause) {
        throw new AmbitError(
          CLI_ERRORS.USAGE,
          `${opts.filename} is not YAML or JSON: ${(cause as Error).message.split('\n')[0]}`,
          { cause },
        );
      }
      const res = await adminClient(opts).call<{ imported: number }>('POST', '/ambit/v1/import', doc);
      console.log(`imported ${res.imported} resources`);
    });
}
