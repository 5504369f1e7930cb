// `ambit prometheus config`'s decisions: the scrape configuration it prints (Istio's job names, file
// discovery from the control plane's target files, the bearer token for the control plane), and its
// flags refused with a code naming the flag. And the token `ambit up` mints for Prometheus, against a
// real `ambit control` (its Unix socket and a loopback TCP listener): what it may read, kept or replaced.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { AdminClient } from '../../../src/cli/client.ts';
import {
  ensurePrometheusToken,
  PROMETHEUS_TOKEN_NAME,
  parsePrometheusOutput,
  parseScrapeInterval,
  prometheusConfig,
  prometheusTokenFile,
  renderPrometheusConfig,
  revokePrometheusToken,
} from '../../../src/cli/prometheus.ts';
import { hasCode } from '../../../src/errors/index.ts';
import { startControl } from '../../helpers/control.ts';

const SD = '/var/lib/ambit/control/prometheus';

describe('prometheusConfig', () => {
  test("istiod for the control plane (with its token), kubernetes-pods for the proxies, from the control plane's files", () => {
    const config = prometheusConfig({
      sdDir: SD,
      scrapeInterval: '1s',
      controlTokenFile: '/etc/prometheus/ambit-token',
    });
    assert.deepEqual(config, {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [
        {
          job_name: 'istiod',
          metrics_path: '/metrics',
          authorization: { type: 'Bearer', credentials_file: '/etc/prometheus/ambit-token' },
          file_sd_configs: [{ files: [`${SD}/control-plane.json`], refresh_interval: '30s' }],
        },
        {
          job_name: 'kubernetes-pods',
          honor_labels: true,
          metrics_path: '/metrics',
          file_sd_configs: [
            {
              files: [`${SD}/ztunnels.json`, `${SD}/waypoints.json`, `${SD}/sidecars.json`],
              refresh_interval: '30s',
            },
          ],
        },
      ],
    });
  });

  test('the default token file is the one `ambit up` writes, in $AMBIT_HOME', () => {
    assert.equal(prometheusTokenFile('/var/lib/ambit'), '/var/lib/ambit/prometheus-token');
  });

  for (const output of ['yaml', 'json'] as const) {
    test(`renders as ${output} that reads back as the same configuration`, () => {
      const config = prometheusConfig({ sdDir: SD, scrapeInterval: '15s', controlTokenFile: '/t' });
      assert.deepEqual(parse(renderPrometheusConfig(config, output)), config);
    });
  }
});

describe('flags', () => {
  for (const [given, want] of [
    ['1s', '1s'],
    ['15s', '15s'],
    ['500ms', '500ms'],
    [' 2m ', '2m'],
    ['01h', '1h'],
  ] as const) {
    test(`--scrape-interval ${JSON.stringify(given)} is ${want}`, () =>
      assert.equal(parseScrapeInterval(given), want));
  }
  for (const bad of ['0s', '15', '1.5s', '1d', 's', '-1s', '1s2']) {
    test(`--scrape-interval ${JSON.stringify(bad)} is refused naming the flag`, () => {
      assert.throws(
        () => parseScrapeInterval(bad),
        (e) => hasCode(e, 'AMBIT_ERR_CLI_BAD_DURATION') && /--scrape-interval/.test(String(e)),
      );
    });
  }
  test('-o takes yaml or json only', () => {
    assert.equal(parsePrometheusOutput('json'), 'json');
    assert.throws(
      () => parsePrometheusOutput('table'),
      (e) => hasCode(e, 'AMBIT_ERR_CLI_BAD_OUTPUT') && /-o\/--output "table"/.test(String(e)),
    );
  });
});

describe("the control plane's token for Prometheus", () => {
  test('minted view-only in ambit-system, kept while it lives, replaced when its file is lost, revoked', async (t) => {
    const cp = await startControl(t, undefined, ['--admin-listen', '127.0.0.1:0']);
    assert.ok(cp.adminUrl, 'the control plane serves a TCP admin listener');
    const dir = await mkdtemp(join(tmpdir(), 'ambit-promtoken-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const admin = new AdminClient(cp.server);
    const file = join(dir, 'prometheus-token');
    const saved = () => readFile(file, 'utf8');
    const status = async (path: string, token?: string) =>
      (
        await fetch(`${cp.adminUrl}${path}`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
        })
      ).status;
    const named = async () =>
      (
        await admin.call<{ items: Array<{ name: string; role: string; namespaces: string[] }> }>(
          'GET',
          '/ambit/v1/admin-tokens',
        )
      ).items.filter((i) => i.name === PROMETHEUS_TOKEN_NAME);

    assert.equal(await ensurePrometheusToken(admin, file), 'created');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const first = (await saved()).trim();
    assert.deepEqual(
      (await named()).map(({ role, namespaces }) => ({ role, namespaces })),
      [{ role: 'view', namespaces: ['ambit-system'] }],
    );
    // It reads /metrics and nothing beyond its namespace; without it, /metrics is refused.
    assert.equal(await status('/metrics', first), 200);
    assert.equal(await status('/metrics'), 401);
    assert.equal(await status('/ambit/v1/admin-tokens', first), 403);
    assert.equal(await status('/ambit/v1/services?namespace=shop', first), 403);

    // `ambit up` again keeps it: a running Prometheus goes on scraping.
    assert.equal(await ensurePrometheusToken(admin, file), 'kept');
    assert.equal((await saved()).trim(), first);

    // A lost (or emptied) file: the old secret is revoked and a new one saved.
    await writeFile(file, '');
    assert.equal(await ensurePrometheusToken(admin, file), 'created');
    const second = (await saved()).trim();
    assert.notEqual(second, first);
    assert.equal(await status('/metrics', first), 401);
    assert.equal(await status('/metrics', second), 200);
    assert.equal((await named()).length, 1);

    await revokePrometheusToken(admin);
    assert.equal(await status('/metrics', second), 401);
    assert.deepEqual(await named(), []);
    // Nothing left to revoke, or no control plane at all: `ambit down` goes on.
    await revokePrometheusToken(admin);
    await revokePrometheusToken(new AdminClient(`unix:${join(dir, 'no-such.sock')}`));
  });
});
