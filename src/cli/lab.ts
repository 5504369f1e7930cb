import { Command } from 'commander';

export function labCommand(): Command {
  return new Command('lab').description('a multi-node lab of network namespaces on this host');
}
