// The operator's command line: `ambit <command>`. It owns argument parsing, output formats and exit
// codes; everything it does is a call into another folder's front door.

export { CLI_ERRORS } from './errors.ts';
export { main } from './main.ts';
