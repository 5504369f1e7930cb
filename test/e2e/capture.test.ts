// Capture end-to-end (root): the nftables table in a real node namespace sends an enrolled pod's
// TCP to the outbound listener, and the SO_ORIGINAL_DST addon recovers where it was going.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NftablesCapture } from '../../src/capture/index.ts';
import { eventually, isRoot, skipUnlessRoot, withLab } from '../helpers/lab.ts';

const CAPTURE = new URL('../../src/capture/index.ts', import.meta.url).pathname;

// A stand-in for the ztunnel's outbound listener: answers each connection with its original destination.
const listener = `
import net from 'node:net';
import { originalDst } from ${JSON.stringify(CAPTURE)};
net.createServer((s) => {
  let body;
  try { body = JSON.stringify(originalDst(s)); } catch (e) { body = JSON.stringify({ error: e.code }); }
  s.end('HTTP/1.1 200 OK\\r\\ncontent-length: ' + body.length + '\\r\\nconnection: close\\r\\n\\r\\n' + body);
}).listen(15001, '0.0.0.0');
`;

describe('capture end-to-end', {
  skip: !isRoot && 'NOT ROOT: capture tests need root (CI runs them as root)',
}, () => {
  test('enrolled pods are redirected with their original destination; un-enrolled and removed are not', async (t) => {
    if (skipUnlessRoot(t)) return;
    const { lab } = await withLab(t, 2);
    const app = await lab.addPod({ name: 'app', node: 'node-1' });
    const other = await lab.addPod({ name: 'other', node: 'node-1' });
    const web = await lab.addPod({ name: 'web', node: 'node-2' });
    await lab.run('web', [
      process.execPath,
      '-e',
      "require('http').createServer((q,s)=>s.end('direct')).listen(8080)",
    ]);
    const capture = new NftablesCapture({ inNetns: ['ip', 'netns', 'exec', await lab.netnsOf('node-1')] });
    await capture.install([app.address]);
    await lab.run('node-1', [process.execPath, '--input-type=module', '-e', listener]);

    const curl = (pod: string) =>
      lab.exec(pod, ['curl', '-sS', '--max-time', '3', `http://${web.address}:8080/`]);
    const captured = await eventually(async () => {
      const r = await curl('app');
      return r.code === 0 ? r.stdout : undefined;
    });
    assert.deepEqual(JSON.parse(captured), { address: web.address, port: 8080, family: 'IPv4' });

    const direct = await curl('other');
    assert.equal(direct.stdout, 'direct', 'a pod that is not enrolled is not captured');

    await capture.unenroll(app.address);
    assert.deepEqual(await capture.enrolled(), []);
    assert.equal((await curl('app')).stdout, 'direct', 'un-enrolling restores plain networking');

    await capture.enroll(other.address);
    assert.equal(JSON.parse((await curl('other')).stdout).port, 8080);
    await capture.remove();
    assert.equal((await curl('other')).stdout, 'direct', 'removing the table restores plain networking');
    const rules = await lab.exec('node-1', ['nft', 'list', 'ruleset']);
    assert.doesNotMatch(rules.stdout, /ambit/);
  });
});
