// `ambit prometheus config`'s decisions: the scrape configuration it prints (Istio's job names, file
// discovery from the control plane's target files, the bearer token for the control plane), and its
// flags refused with a code naming the flag.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  parsePrometheusOutput,
  parseScrapeInterval,
  prometheusConfig,
  renderPrometheusConfig,
} from '../../../src/cli/prometheus.ts';
import { hasCode } from '../../../src/errors/index.ts';

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
            { files: [`${SD}/ztunnels.json`, `${SD}/waypoints.json`], refresh_interval: '30s' },
          ],
        },
      ],
    });
  });

  test('without a token file the istiod job carries no authorization', () => {
    const [istiod] = prometheusConfig({ sdDir: SD, scrapeInterval: '15s' }).scrape_configs;
    assert.equal(istiod?.job_name, 'istiod');
    assert.equal(istiod?.authorization, undefined);
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
