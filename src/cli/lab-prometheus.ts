// The lab's own Prometheus, for `ambit dashboard` and `ambit stat` when no --prometheus is given: Debian's
// `prometheus` server run as root in the lab's bridge namespace (the one place every target answers, see
// `ambit prometheus config`) with the configuration that command prints, its data in
// $AMBIT_HOME/prometheus. The host reaches it through a Unix socket that a forwarder in the same
// namespace serves. Both are lab processes: `ambit down` stops them. Started once, then reused.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { DASHBOARD_ERRORS, PrometheusApi } from '../dashboard/index.ts';
import { AmbitError, describeError } from '../errors/index.ts';
import { CONTROL_TARGET, checkPrerequisites, defaultLabName, Lab, waitUntil } from '../lab/index.ts';
import { defaultSdDir, prometheusConfig, prometheusTokenFile, renderPrometheusConfig } from './prometheus.ts';

/** Where it listens, on the bridge namespace's own loopback (not 9090, which a user's own may hold). */
export const LAB_PROMETHEUS_ADDRESS = '127.0.0.1:19090';
/** Often enough that a dashboard opened a minute after traffic starts has rates to show. */
export const LAB_SCRAPE_INTERVAL = '5s';

export function labPrometheusDir(home: string): string {
  return join(home, 'prometheus');
}

/** The lab's Prometheus, started if it is not running; the client that reaches it from the host. */
export async function labPrometheus(home: string, lab = defaultLabName()): Promise<PrometheusApi> {
  const dir = labPrometheusDir(home);
  const socketPath = join(dir, 'web.sock');
  const api = new PrometheusApi({ url: `http://${LAB_PROMETHEUS_ADDRESS}`, socketPath, timeoutMs: 5000 });
  const l = new Lab({ home, name: lab });
  const status = await l.status();
  const controlRuns = [status?.control, ...(status?.hosts ?? [])].some((h) =>
    h?.processes.some((p) => p.running && p.command[0] === 'ambit' && p.command[1] === 'control'),
  );
  if (!status || !controlRuns) {
    throw new AmbitError(
      DASHBOARD_ERRORS.NO_PROMETHEUS,
      `no mesh is up in lab "${lab}" to start a Prometheus for: run \`ambit up\` (or \`ambit demo\`) first, or give --prometheus URL`,
    );
  }
  const isPrometheus = (argv: string[]) => argv[0] === 'prometheus';
  const isForward = (argv: string[]) => argv[0] === 'ambit' && argv[1] === 'lab' && argv[2] === 'forward';
  const running = async (is: (argv: string[]) => boolean) =>
    ((await l.status())?.control.processes ?? []).some((p) => p.running && is(p.command));
  if ((await running(isPrometheus)) && (await running(isForward)) && (await api.ready())) return api;

  await checkPrerequisites({ prometheus: 'prometheus' });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // One starter at a time: a dashboard and a stat started together must not both start a server.
  const release = await lockfile.lock(dir, {
    lockfilePath: `${dir}.lock`,
    realpath: false,
    stale: 10_000,
    update: 2_000,
    retries: { retries: 300, minTimeout: 100, maxTimeout: 200 },
  });
  try {
    const configFile = join(dir, 'prometheus.yml');
    const config = prometheusConfig({
      sdDir: defaultSdDir(home),
      scrapeInterval: LAB_SCRAPE_INTERVAL,
      controlTokenFile: prometheusTokenFile(home),
    });
    if (!(await running(isPrometheus))) {
      await writeFile(configFile, renderPrometheusConfig(config, 'yaml'), { mode: 0o600 });
      await l.run(CONTROL_TARGET, [
        'prometheus',
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        '--storage.tsdb.retention.time=1d',
        `--web.listen-address=${LAB_PROMETHEUS_ADDRESS}`,
        '--log.level=warn',
      ]);
    }
    if (!(await running(isForward))) {
      await l.run(CONTROL_TARGET, [
        'ambit',
        'lab',
        'forward',
        '--unix',
        socketPath,
        '--to',
        LAB_PROMETHEUS_ADDRESS,
      ]);
    }
    await waitUntil('the lab Prometheus', 30_000, async () => ((await api.ready()) ? true : undefined), 200);
  } catch (err) {
    throw new AmbitError(
      DASHBOARD_ERRORS.NO_PROMETHEUS,
      `the lab's Prometheus did not become ready: ${describeError(err)}; see its log in $AMBIT_HOME/labs/${lab}/logs`,
    );
  } finally {
    await release();
  }
  return api;
}
