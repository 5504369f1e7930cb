// `ambit prometheus config`: a Prometheus scrape configuration for the running mesh, with the job names
// operators know from Istio (`istiod` for the control plane; `kubernetes-pods`, labelled as Istio's
// sample labels pods, for the ztunnels and waypoints) and file-based discovery from the target files
// the control plane keeps current in its data directory, so the config is printed once and stays right.
// Also the `view` admin token `ambit up` mints for that Prometheus (the control plane's /metrics needs one).

import { existsSync } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { stringify } from 'yaml';
import { PORTS } from '../config/index.ts';
import { PROMETHEUS_SD_FILES, type TargetKind } from '../control/index.ts';
import { AmbitError } from '../errors/index.ts';
import { SYSTEM_NAMESPACE } from '../identity/index.ts';
import { ambitHome } from '../lab/index.ts';
import { type AdminClient, controlDataDirs } from './client.ts';
import { CLI_ERRORS } from './errors.ts';

/** Istio's sample Prometheus scrapes every 15 s. */
export const DEFAULT_SCRAPE_INTERVAL = '15s';
/** Prometheus re-reads target files on change (inotify); this is the backstop if a change is missed. */
export const SD_REFRESH_INTERVAL = '30s';

export interface PrometheusConfigOptions {
  /** The directory holding the control plane's target files. */
  sdDir: string;
  scrapeInterval: string;
  /** A file holding a bearer token for the control plane's admin listener (its /metrics needs one). */
  controlTokenFile: string;
}

interface FileSd {
  files: string[];
  refresh_interval: string;
}

export interface ScrapeConfig {
  job_name: string;
  honor_labels?: boolean;
  metrics_path: string;
  authorization?: { type: 'Bearer'; credentials_file: string };
  file_sd_configs: FileSd[];
}

export interface PrometheusConfig {
  global: { scrape_interval: string; evaluation_interval: string };
  scrape_configs: ScrapeConfig[];
}

/** The scrape configuration. Pure: paths are taken as given (the caller makes them absolute). */
export function prometheusConfig(opts: PrometheusConfigOptions): PrometheusConfig {
  const sd = (...kinds: TargetKind[]): FileSd[] => [
    {
      files: kinds.map((k) => join(opts.sdDir, PROMETHEUS_SD_FILES[k])),
      refresh_interval: SD_REFRESH_INTERVAL,
    },
  ];
  return {
    global: { scrape_interval: opts.scrapeInterval, evaluation_interval: opts.scrapeInterval },
    scrape_configs: [
      {
        job_name: 'istiod',
        metrics_path: '/metrics',
        // Prometheus reads the file at every scrape: a token `ambit up` replaces is picked up without a reload.
        authorization: { type: 'Bearer', credentials_file: opts.controlTokenFile },
        file_sd_configs: sd('control'),
      },
      // As Istio's sample: the proxies' own labels win over the target's where both name one.
      {
        job_name: 'kubernetes-pods',
        honor_labels: true,
        metrics_path: '/metrics',
        file_sd_configs: sd('ztunnel', 'waypoint', 'sidecar'),
      },
    ],
  };
}

/** A Prometheus duration as the flag takes it: a whole number of ms, s, m or h, above zero. */
export function parseScrapeInterval(value: string): string {
  const m = /^([0-9]{1,6})(ms|s|m|h)$/.exec(value.trim());
  if (!m || Number(m[1]) === 0) {
    throw new AmbitError(
      CLI_ERRORS.BAD_DURATION,
      `--scrape-interval "${value}" is not a Prometheus duration such as 1s, 15s or 1m`,
    );
  }
  return `${Number(m[1])}${m[2]}`;
}

export type PrometheusOutput = 'yaml' | 'json';

export function parsePrometheusOutput(value: string): PrometheusOutput {
  if (value !== 'yaml' && value !== 'json') {
    throw new AmbitError(CLI_ERRORS.BAD_OUTPUT, `-o/--output "${value}" is not a format; use yaml or json`);
  }
  return value;
}

export function renderPrometheusConfig(config: PrometheusConfig, output: PrometheusOutput): string {
  if (output === 'json') return JSON.stringify(config, null, 2);
  return `# Prometheus scrape configuration for the Ambit mesh (ambit prometheus config).\n${stringify(config).trimEnd()}`;
}

/** What the operator should know before using the config: missing target files, no control plane target, no token. */
async function warnings(opts: PrometheusConfigOptions, tokenGiven: boolean): Promise<string[]> {
  const out: string[] = [];
  const control = await readFile(join(opts.sdDir, PROMETHEUS_SD_FILES.control), 'utf8').catch(
    () => undefined,
  );
  if (control === undefined) {
    out.push(
      `no target files in ${opts.sdDir}: the control plane writes them while it runs with a lab (\`ambit up\`); Prometheus will find the targets once they appear`,
    );
  } else if (control.trim() === '[]') {
    out.push(
      `the control plane serves its metrics only on its admin socket: \`ambit up\` gives it a TCP listener (127.0.0.1:${PORTS.controlAdmin} in the lab's bridge namespace); one started by hand needs --admin-listen`,
    );
  }
  if (!(await stat(opts.controlTokenFile).catch(() => undefined))) {
    out.push(
      tokenGiven
        ? `--control-token-file ${opts.controlTokenFile} does not exist yet; the istiod job fails until it does`
        : `no token in ${opts.controlTokenFile} yet: \`ambit up\` saves one there; the istiod job fails until it does (or pass --control-token-file)`,
    );
  }
  return out;
}

/** The admin token `ambit up` mints for Prometheus, by name (`ambit control admin-token list` shows it). */
export const PROMETHEUS_TOKEN_NAME = 'ambit-prometheus';

/** Where `ambit up` saves that token (0600) and where `ambit prometheus config` points Prometheus by default. */
export function prometheusTokenFile(home = ambitHome()): string {
  return join(home, 'prometheus-token');
}

/**
 * Makes sure `file` holds a live token Prometheus can scrape the control plane with: `view` in
 * ambit-system, the least any token is (every role may read /metrics; it reads no resource outside
 * that namespace and may change nothing). A saved token the control plane still knows is kept, so
 * `ambit up` again does not break a running Prometheus; else any old one of that name is revoked (its
 * secret is lost) and a new one saved, replaced atomically.
 */
export async function ensurePrometheusToken(admin: AdminClient, file: string): Promise<'kept' | 'created'> {
  const { items } = await admin.call<{ items: Array<{ name: string }> }>('GET', '/ambit/v1/admin-tokens');
  const known = items.some((t) => t.name === PROMETHEUS_TOKEN_NAME);
  const saved = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (known && saved !== '') return 'kept';
  if (known) await admin.call('DELETE', `/ambit/v1/admin-tokens/${PROMETHEUS_TOKEN_NAME}`);
  const { token } = await admin.call<{ token: string }>('POST', '/ambit/v1/admin-tokens', {
    name: PROMETHEUS_TOKEN_NAME,
    role: 'view',
    namespaces: [SYSTEM_NAMESPACE],
  });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${token}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return 'created';
}

/**
 * Revokes the token `ensurePrometheusToken` minted. Best effort: a control plane that is not running
 * or never had it leaves nothing to revoke now, and the next `ensurePrometheusToken` replaces a stale one.
 */
export async function revokePrometheusToken(admin: AdminClient): Promise<void> {
  await admin.call('DELETE', `/ambit/v1/admin-tokens/${PROMETHEUS_TOKEN_NAME}`).catch(() => {});
}

export function prometheusCommand(): Command {
  const prometheus = new Command('prometheus').description(
    'Prometheus integration: scrape configuration for the mesh',
  );
  prometheus
    .command('config')
    .description(
      "print a Prometheus scrape configuration for every ztunnel, waypoint and the control plane (file-based discovery from the control plane's target files)",
    )
    .option('--sd-dir <dir>', "the control plane's target files (default $AMBIT_HOME/control/prometheus)")
    .option(
      '--scrape-interval <duration>',
      'how often to scrape (1s, 15s, 1m)',
      parseScrapeInterval,
      DEFAULT_SCRAPE_INTERVAL,
    )
    .option(
      '--control-token-file <file>',
      "a file with a bearer token for the control plane's admin listener (default $AMBIT_HOME/prometheus-token, which `ambit up` writes)",
    )
    .option('-o, --output <format>', 'yaml or json', parsePrometheusOutput, 'yaml' as PrometheusOutput)
    .action(
      async (flags: {
        sdDir?: string;
        scrapeInterval: string;
        controlTokenFile?: string;
        output: PrometheusOutput;
      }) => {
        // Prometheus resolves relative paths against its config file's directory: write absolute ones.
        const opts: PrometheusConfigOptions = {
          sdDir: resolve(flags.sdDir ?? defaultSdDir(ambitHome())),
          scrapeInterval: flags.scrapeInterval,
          controlTokenFile: resolve(flags.controlTokenFile ?? prometheusTokenFile()),
        };
        for (const w of await warnings(opts, flags.controlTokenFile !== undefined)) console.error(`⚠️ ${w}`);
        console.log(renderPrometheusConfig(prometheusConfig(opts), flags.output));
      },
    );
  return prometheus;
}

/**
 * Where the lab's control plane writes its target files: `control/prometheus`, or with `ambit up --ha`
 * the first replica's that exists (every replica writes the same lab targets).
 */
export function defaultSdDir(home: string): string {
  const dirs = controlDataDirs(home).map((d) => join(d, 'prometheus'));
  return dirs.find((d) => existsSync(d)) ?? dirs[0]!;
}
