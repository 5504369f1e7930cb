import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasCode } from '../../../src/errors/index.ts';
import {
  parseLabels,
  parsePort,
  parseUpstreamList,
  parseUpstreamUrl,
  resolvePod,
  SAMPLE_BAD_ARG,
} from '../../../src/samples/index.ts';

const rejects = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (err) => hasCode(err, SAMPLE_BAD_ARG) && pattern.test(err.message));

describe('parsePort', () => {
  for (const [input, port] of [
    ['1', 1],
    ['8080', 8080],
    [' 65535 ', 65535],
    [9000, 9000],
  ] as const) {
    it(`accepts ${JSON.stringify(input)}`, () => assert.equal(parsePort(input), port));
  }
  for (const input of ['0', '65536', '-1', '80.5', 'http', '', '0x50', '1e3', '99999999999999999999']) {
    it(`rejects ${JSON.stringify(input)} naming the flag`, () =>
      rejects(() => parsePort(input, '--port'), /^--port/));
  }
  it('accepts 0 only when asked to', () => assert.equal(parsePort('0', 'port', true), 0));
});

describe('parseUpstreamUrl / parseUpstreamList', () => {
  it('accepts http and https base URLs, keeping a path prefix', () => {
    assert.equal(parseUpstreamUrl('http://127.0.0.1:8081', '--ratings').href, 'http://127.0.0.1:8081/');
    assert.equal(parseUpstreamUrl('https://catalog.shop:443/api', '--ratings').pathname, '/api');
  });
  for (const [input, pattern] of [
    ['catalog:8080', /http/],
    ['not a url', /is not a URL/],
    ['ftp://x', /http/],
    ['http://x/?a=1', /query/],
    ['http://u:p@x/', /credentials/],
  ] as const) {
    it(`rejects ${input}`, () => rejects(() => parseUpstreamUrl(input, '--catalog'), pattern));
  }
  it('splits a comma list and names the flag on a bad entry', () => {
    assert.deepEqual(
      parseUpstreamList('http://127.0.0.1:1, http://127.0.0.1:2', '--catalog').map((u) => u.port),
      ['1', '2'],
    );
    rejects(() => parseUpstreamList('http://127.0.0.1:1,nope', '--catalog'), /--catalog 'nope'/);
    rejects(() => parseUpstreamList(' , ', '--catalog'), /at least one/);
  });
});

describe('parseLabels', () => {
  it('reads k=v pairs, allowing empty values and spaces around commas', () => {
    assert.deepEqual(parseLabels('app=catalog, version=v2,empty='), {
      app: 'catalog',
      version: 'v2',
      empty: '',
    });
    assert.deepEqual(parseLabels(''), {});
  });
  for (const input of ['app', '=v2', 'app=a,version']) {
    it(`rejects ${JSON.stringify(input)}`, () => rejects(() => parseLabels(input, '--labels'), /key=value/));
  }
});

describe('resolvePod', () => {
  const env = {
    AMBIT_POD: 'catalog-v2-abc',
    AMBIT_NODE: 'node-2',
    AMBIT_NAMESPACE: 'shop',
    AMBIT_SERVICE_ACCOUNT: 'catalog',
    AMBIT_LABELS: 'app=catalog,version=v2',
  };
  it('reads the pod environment', () => {
    assert.deepEqual(resolvePod({}, env), {
      pod: 'catalog-v2-abc',
      node: 'node-2',
      namespace: 'shop',
      serviceAccount: 'catalog',
      labels: { app: 'catalog', version: 'v2' },
      version: 'v2',
    });
  });
  it('lets explicit options win, --version over the version label', () => {
    const pod = resolvePod({ pod: 'mine', namespace: 'other', labels: { tier: 'web' }, version: 'v9' }, env);
    assert.equal(pod.pod, 'mine');
    assert.equal(pod.namespace, 'other');
    assert.equal(pod.node, 'node-2');
    assert.deepEqual(pod.labels, { app: 'catalog', version: 'v9', tier: 'web' });
    assert.equal(pod.version, 'v9');
  });
  it('has defaults outside a pod, and no version', () => {
    const pod = resolvePod({}, {});
    assert.equal(pod.namespace, 'default');
    assert.equal(pod.serviceAccount, 'default');
    assert.ok(pod.pod.length > 0);
    assert.equal(pod.version, undefined);
  });
  it('names AMBIT_LABELS when it is malformed', () => {
    rejects(() => resolvePod({}, { AMBIT_LABELS: 'version' }), /AMBIT_LABELS/);
  });
});
