// The HTTP/2 window budget without sockets: the stream window a session announces as its streams (and
// the process's) open and close, in powers of two between 64 KiB and the full window.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { WindowBudget } from '../../../src/hbone/index.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

class FakeSession extends EventEmitter {
  destroyed = false;
  pendingSettingsAck = false;
  announced: number[] = [];
  settings(s: { initialWindowSize?: number }): void {
    this.announced.push(s.initialWindowSize ?? -1);
  }
}

describe('WindowBudget', () => {
  test('a session shares its bytes among its streams', () => {
    const b = new WindowBudget();
    assert.equal(b.windowFor(1), 4 * MiB);
    assert.equal(b.windowFor(4), 4 * MiB);
    assert.equal(b.windowFor(5), 2 * MiB);
    assert.equal(b.windowFor(100), 128 * KiB);
    assert.equal(b.windowFor(100_000), 64 * KiB);
    const s = new FakeSession();
    b.track(s);
    for (let i = 0; i < 100; i++) b.opened(s);
    assert.deepEqual(s.announced, [2 * MiB, 1 * MiB, 512 * KiB, 256 * KiB, 128 * KiB]);
    for (let i = 0; i < 100; i++) b.closed(s);
    assert.equal(s.announced.at(-1), 4 * MiB, 'back to the full window when the streams are gone');
    assert.equal(b.stats().streams, 0);
  });

  test('the process share lowers every session; a change waits for the SETTINGS in flight', () => {
    const b = new WindowBudget({ processBytes: 8 * MiB });
    const [s1, s2] = [new FakeSession(), new FakeSession()];
    b.track(s1);
    b.track(s2);
    for (let i = 0; i < 2; i++) b.opened(s1);
    s2.pendingSettingsAck = true;
    for (let i = 0; i < 6; i++) b.opened(s2); // 8 streams in the process: 1 MiB each
    assert.equal(s1.announced.at(-1), 1 * MiB);
    assert.deepEqual(s2.announced, [], 'nothing sent while its SETTINGS awaits an ACK');
    s2.pendingSettingsAck = false;
    s2.emit('localSettings');
    assert.deepEqual(s2.announced, [1 * MiB]);
    s1.emit('close'); // its streams leave the count with it
    assert.equal(b.stats().streams, 6);
  });
});
