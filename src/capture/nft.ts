// Runs `nft` (in the node's namespace when given a prefix), turning its failures into the capture
// catalogue's errors: a missing binary says how to install it, any other failure carries nft's stderr.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AmbitError } from '../errors/index.ts';
import { CAPTURE_ERRORS } from './errors.ts';

const execFileP = promisify(execFile);

/** `nft ARGS` with `input` on stdin; `prefix` runs it elsewhere, e.g. `['ip', 'netns', 'exec', ns]`. */
export async function runNft(
  prefix: readonly string[],
  args: readonly string[],
  input?: string,
): Promise<string> {
  const [cmd, ...rest] = [...prefix, 'nft', ...args];
  try {
    const child = execFileP(cmd!, rest, { maxBuffer: 16 * 1024 * 1024 });
    if (input !== undefined) child.child.stdin?.end(input);
    return (await child).stdout;
  } catch (cause) {
    const e = cause as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new AmbitError(
        CAPTURE_ERRORS.NO_NFT,
        'the `nft` command is missing: `apt-get install -y nftables`',
        {
          cause,
        },
      );
    }
    throw new AmbitError(
      CAPTURE_ERRORS.NFT,
      `nft ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`,
      {
        cause,
      },
    );
  }
}
