// `ambit sample …`: runs one sample workload in the foreground (inside a lab pod, usually) until
// SIGTERM or SIGINT, then drains it. Identity defaults come from the AMBIT_* pod environment.

import { readFile } from 'node:fs/promises';
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { AmbitError, describeError } from '../errors/index.ts';
import {
  callEcho,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_TIMEOUT_MS,
  type PodOverrides,
  parseInteger,
  parseLabels,
  parsePort,
  parseUpstreamList,
  parseUpstreamUrl,
  type SampleServer,
  startCatalog,
  startEcho,
  startFrontend,
  startGrpcEcho,
  startRatings,
  startSink,
  startTcpEcho,
} from '../samples/index.ts';
import { CLI_ERRORS } from './errors.ts';

interface CommonFlags extends PodOverrides {
  host: string;
  port: number;
}

interface StorefrontFlags extends CommonFlags {
  catalog?: URL[];
  ratings?: URL;
  timeout: number;
}

/** Turns a validator's AmbitError into commander's usage error (exit 2, message plus help hint). */
function flag<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError(describeError(err));
    }
  };
}

function withCommonFlags(cmd: Command, defaultPort: number): Command {
  return cmd
    .option('--host <address>', 'address to listen on', DEFAULT_HOST)
    .addOption(
      new Option('--port <port>', 'port to listen on (1-65535)')
        .default(defaultPort)
        .argParser(flag((v) => parsePort(v, '--port'))),
    )
    .option('--pod <name>', 'pod name to report (default $AMBIT_POD, else the host name)')
    .option('--node <name>', 'node name to report (default $AMBIT_NODE, else the host name)')
    .option('--namespace <ns>', 'namespace to report (default $AMBIT_NAMESPACE, else default)')
    .option('--service-account <sa>', 'service account to report (default $AMBIT_SERVICE_ACCOUNT)')
    .addOption(
      new Option('--labels <k=v,...>', 'pod labels (default $AMBIT_LABELS)').argParser(
        flag((v) => parseLabels(v, '--labels')),
      ),
    )
    .option('--version <version>', 'version to report (default the version label)');
}

function podOverrides(flags: CommonFlags): PodOverrides {
  return {
    pod: flags.pod,
    node: flags.node,
    namespace: flags.namespace,
    serviceAccount: flags.serviceAccount,
    labels: flags.labels,
    version: flags.version,
  };
}

/** Runs a started sample until SIGTERM or SIGINT; a second signal during the drain kills at once. */
async function serveUntilSignal(start: () => Promise<SampleServer>): Promise<void> {
  const server = await start();
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await server.close();
}

function simple(
  name: string,
  description: string,
  defaultPort: number,
  start: (opts: { host: string; port: number; pod: PodOverrides }) => Promise<SampleServer>,
): Command {
  return withCommonFlags(new Command(name).description(description), defaultPort).action(
    (flags: CommonFlags) =>
      serveUntilSignal(() => start({ host: flags.host, port: flags.port, pod: podOverrides(flags) })),
  );
}

function storefrontCommand(): Command {
  const cmd = new Command('storefront')
    .description(
      'one service of the storefront app: frontend → catalog (v1 plain, v2 with ratings) → ratings',
    )
    .addArgument(new Argument('<role>', 'which service to run').choices(['frontend', 'catalog', 'ratings']));
  return withCommonFlags(cmd, 8080)
    .addOption(
      new Option('--catalog <url,...>', 'frontend: catalog base URLs, taken in turn').argParser(
        flag((v) => parseUpstreamList(v, '--catalog')),
      ),
    )
    .addOption(
      new Option('--ratings <url>', 'catalog v2+: ratings base URL').argParser(
        flag((v) => parseUpstreamUrl(v, '--ratings')),
      ),
    )
    .addOption(
      new Option('--timeout <ms>', 'timeout for each upstream call')
        .default(DEFAULT_TIMEOUT_MS)
        .argParser(flag((v) => parseInteger(v, '--timeout (ms)', 1, 600_000))),
    )
    .action((role: 'frontend' | 'catalog' | 'ratings', flags: StorefrontFlags) => {
      const base = { host: flags.host, port: flags.port, pod: podOverrides(flags), timeoutMs: flags.timeout };
      if (role !== 'frontend' && flags.catalog) throw misplaced('--catalog', 'frontend', role);
      if (role !== 'catalog' && flags.ratings) throw misplaced('--ratings', 'catalog', role);
      if (role === 'frontend') {
        if (!flags.catalog) {
          throw new AmbitError(CLI_ERRORS.USAGE, 'storefront frontend needs --catalog URL[,URL...]');
        }
        const catalog = flags.catalog;
        return serveUntilSignal(() => startFrontend({ ...base, catalog }));
      }
      if (role === 'catalog')
        return serveUntilSignal(() => startCatalog({ ...base, ratings: flags.ratings }));
      return serveUntilSignal(() => startRatings(base));
    });
}

interface EchoFlags extends CommonFlags {
  keepAlive?: number;
  tlsCert?: string;
  tlsKey?: string;
}

function echoCommand(): Command {
  const cmd = new Command('echo').description(
    'HTTP/1.1, h2c and WebSocket echo: JSON about the pod and the request; ?delay= ?status= ?size= ?fail=',
  );
  return withCommonFlags(cmd, 8080)
    .addOption(
      new Option(
        '--keep-alive <ms>',
        'idle HTTP/1.1 keep-alive before the echo closes (default 5000)',
      ).argParser(flag((v) => parseInteger(v, '--keep-alive (ms)', 1, 3_600_000))),
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate chain (PEM; with --tls-key)')
    .option('--tls-key <file>', "the certificate's private key (PEM)")
    .action((flags: EchoFlags) =>
      serveUntilSignal(async () =>
        startEcho({
          host: flags.host,
          port: flags.port,
          pod: podOverrides(flags),
          keepAliveMs: flags.keepAlive,
          ...(await servingCertificate(flags)),
        }),
      ),
    );
}

/** `--tls-cert` and `--tls-key`, read; both or neither. */
async function servingCertificate(flags: EchoFlags): Promise<{ tls?: { certPem: string; keyPem: string } }> {
  if (flags.tlsCert === undefined && flags.tlsKey === undefined) return {};
  if (flags.tlsCert === undefined || flags.tlsKey === undefined)
    throw new AmbitError(CLI_ERRORS.USAGE, '--tls-cert and --tls-key go together: give both, or neither');
  const read = (path: string, flag: string) =>
    readFile(path, 'utf8').catch((err: unknown) => {
      throw new AmbitError(CLI_ERRORS.USAGE, `${flag} ${path}: ${describeError(err)}`);
    });
  return {
    tls: { certPem: await read(flags.tlsCert, '--tls-cert'), keyPem: await read(flags.tlsKey, '--tls-key') },
  };
}

interface GrpcClientFlags {
  target: string;
  message: string;
  stream?: number;
  interval: number;
  timeout: number;
}

/** One call to the gRPC echo; prints `{rpc, replies, status}` as JSON and exits 1 unless the status is OK. */
function grpcClientCommand(): Command {
  return new Command('grpc-client')
    .description('calls the gRPC echo once (unary, or --stream N replies) and prints replies and grpc-status')
    .requiredOption('--target <host:port>', 'the gRPC echo to call, e.g. a Service VIP and port')
    .option('--message <text>', 'the message to send', 'hello')
    .addOption(
      new Option(
        '--stream <count>',
        'call the server stream for this many replies instead of unary Echo',
      ).argParser(flag((v) => parseInteger(v, '--stream', 0, 1_000_000))),
    )
    .addOption(
      new Option('--interval <ms>', 'gap between streamed replies')
        .default(0)
        .argParser(flag((v) => parseInteger(v, '--interval (ms)', 0, 600_000))),
    )
    .addOption(
      new Option('--timeout <ms>', 'deadline of the call')
        .default(DEFAULT_CALL_TIMEOUT_MS)
        .argParser(flag((v) => parseInteger(v, '--timeout (ms)', 1, 600_000))),
    )
    .action(async (flags: GrpcClientFlags) => {
      const result = await callEcho({
        target: flags.target,
        message: flags.message,
        stream: flags.stream,
        intervalMs: flags.interval,
        timeoutMs: flags.timeout,
      });
      console.log(JSON.stringify(result));
      if (result.status.code !== 0) process.exitCode = 1;
    });
}

function misplaced(option: string, owner: string, role: string): AmbitError {
  return new AmbitError(CLI_ERRORS.USAGE, `${option} is for the storefront ${owner}, not the ${role}`);
}

export function sampleCommand(): Command {
  return new Command('sample')
    .description('sample workloads for demos and tests (run them inside lab pods)')
    .addCommand(echoCommand())
    .addCommand(simple('tcp-echo', 'TCP echo; ends after the client half-closes', 9000, startTcpEcho))
    .addCommand(
      simple('sink', 'swallows TCP bytes; answers the count when the client half-closes', 9001, startSink),
    )
    .addCommand(
      simple('grpc-echo', 'gRPC ambit.sample.v1.Echo (unary, streams, bidi), insecure', 9090, startGrpcEcho),
    )
    .addCommand(grpcClientCommand())
    .addCommand(storefrontCommand());
}
