// `ambit dashboard`: the web UI, served on loopback, read from the control plane's admin API and a
// Prometheus server (the lab's own, started on first use, unless --prometheus names one).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import {
  type CertStatus,
  DASHBOARD_ERRORS,
  DashboardData,
  dashboardServer,
  PrometheusApi,
  parsePrometheusUrl,
  Sources,
} from '../dashboard/index.ts';
import { AmbitError } from '../errors/index.ts';
import { ambitHome } from '../lab/index.ts';
import { logger } from '../log/index.ts';
import { sidecarAdminSocket } from '../sidecar/index.ts';
import { adminClient, serverOption, tokenOption } from './client.ts';
import { labPrometheus } from './lab-prometheus.ts';
import { describeLines } from './mesh.ts';
import { adminGet } from './ztunnel.ts';

/** The dashboard's address unless --listen says otherwise (Kiali's port). */
export const DEFAULT_DASHBOARD_LISTEN = '127.0.0.1:20001';
/** How long a page waits for either source before it answers with what it has. */
const SOURCE_TIMEOUT_MS = 5000;

/** `host:port` with an IP host (a name could resolve anywhere); port 0 takes a free one. */
export function parseListen(value: string): { host: string; port: number } {
  const at = value.lastIndexOf(':');
  const host = value.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(value.slice(at + 1));
  if (at <= 0 || isIP(host) === 0 || !/^\d+$/.test(value.slice(at + 1)) || port > 65535)
    throw new InvalidArgumentError(
      `--listen must be IP:PORT (e.g. ${DEFAULT_DASHBOARD_LISTEN}), not "${value}"`,
    );
  return { host, port };
}

/** The Prometheus named by --prometheus, or the lab's own (started if need be). */
export async function resolvePrometheus(
  flag: string | undefined,
  home = ambitHome(),
): Promise<PrometheusApi> {
  if (flag !== undefined) return new PrometheusApi({ url: flag, timeoutMs: SOURCE_TIMEOUT_MS });
  return labPrometheus(home);
}

export const prometheusOption = (cmd: Command) =>
  cmd.option(
    '--prometheus <url>',
    "a Prometheus to read (only read) that scrapes the mesh; default: the lab's own, started on first use",
    (v: string) => {
      parsePrometheusUrl(v);
      return v;
    },
  );

export function dashboardCommand(): Command {
  const cmd = new Command('dashboard')
    .description('serve the web dashboard: service graph, golden signals, mesh health (read-only)')
    .option('--listen <ip:port>', 'where to serve it (loopback unless told otherwise)', parseListen)
    .option('--open', 'open it in the default browser')
    .addOption(serverOption())
    .addOption(tokenOption());
  prometheusOption(cmd);
  return cmd.action(
    async (opts: {
      listen?: { host: string; port: number };
      open?: boolean;
      prometheus?: string;
      server?: string;
      token?: string;
    }) => {
      const log = logger('dashboard');
      const listen = opts.listen ?? parseListen(DEFAULT_DASHBOARD_LISTEN);
      const home = ambitHome();
      const prometheus = await resolvePrometheus(opts.prometheus, home);
      const admin = adminClient(opts, process.env, { timeoutMs: SOURCE_TIMEOUT_MS });
      const data = new DashboardData({
        admin,
        prometheus,
        sources: new Sources(prometheus.url),
        describe: (kind, namespace, name) => describeLines(admin, kind, name, namespace),
        certificates: (node, sidecar) => labCertificates(home, node, sidecar),
      });
      const assets = resolve(import.meta.dirname, '../../dist/dashboard');
      if (!existsSync(join(assets, 'index.html')))
        console.error(`⚠️ the page is not built (${assets} is missing): run \`npm run build\``);
      const server = dashboardServer({ data, assets, log });
      await new Promise<void>((done, fail) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          fail(
            new AmbitError(
              DASHBOARD_ERRORS.BAD_FLAG,
              err.code === 'EADDRINUSE'
                ? `cannot listen on ${listen.host}:${listen.port}: something already listens there (another dashboard?); choose another with --listen`
                : `cannot listen on ${listen.host}:${listen.port}: ${err.message}`,
            ),
          ),
        );
        server.listen(listen.port, listen.host, done);
      });
      const port = (server.address() as { port: number }).port;
      const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
      const url = `http://${host}:${port}/`;
      if (!listen.host.startsWith('127.') && listen.host !== '::1')
        console.error(
          `⚠️ listening on ${listen.host}: anyone who can reach it can read the mesh's topology and traffic`,
        );
      console.log(
        `Ambit dashboard: ${url}  (Prometheus: ${prometheus.url}; control plane: ${admin.server}; Ctrl-C stops it)`,
      );
      if (opts.open) openBrowser(url);
      const stop = () => {
        server.close();
        server.closeAllConnections();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await new Promise((done) => server.once('close', done));
    },
  );
}

/** Certificate reads give up after this: one stopped ztunnel must not hold a page. */
const CERTIFICATES_TIMEOUT_MS = 2000;

/** The certificates a lab node's ztunnel holds, read on its admin socket; undefined when it is not here. */
async function labCertificates(
  home: string,
  node: string,
  sidecar?: { namespace: string; name: string },
): Promise<CertStatus[] | undefined> {
  const dataDir = join(home, 'nodes', node);
  const socket = sidecar
    ? sidecarAdminSocket(dataDir, sidecar.namespace, sidecar.name)
    : join(dataDir, 'admin.sock');
  if (!existsSync(socket)) return undefined;
  const { certificates } = (await adminGet(socket, '/certs', 'ztunnel', CERTIFICATES_TIMEOUT_MS)) as {
    certificates: CertStatus[];
  };
  return certificates;
}

/** xdg-open, where there is one; otherwise the printed address is enough. */
function openBrowser(url: string): void {
  const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
  child.on('error', () => console.error(`could not open a browser (no xdg-open): visit ${url}`));
  child.unref();
}
