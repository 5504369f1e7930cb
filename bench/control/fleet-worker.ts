// The worker side of WorkerFleet: runs a LocalFleet of proxies in its own thread and answers the
// benchmark's start / expect / stop messages.

import { parentPort } from 'node:worker_threads';
import { type FromWorker, LocalFleet, type ToWorker } from './fleet.ts';

const port = parentPort;
if (!port) throw new Error('fleet-worker.ts runs only as a worker thread (see WorkerFleet)');

let fleet: LocalFleet | undefined;
const reply = (m: FromWorker) => port.postMessage(m);

port.on('message', (m: ToWorker) => {
  const run = async (): Promise<FromWorker> => {
    switch (m.op) {
      case 'start':
        fleet = await LocalFleet.start(m.target, m.creds);
        return { op: 'started', initialBytes: fleet.initialBytes };
      case 'expect': {
        if (!fleet) throw new Error('expect before start');
        const arrived = fleet.arm(m.expectations);
        reply({ op: 'armed' });
        return { op: 'arrived', arrival: await arrived };
      }
      case 'stop':
        await fleet?.stop();
        fleet = undefined;
        return { op: 'stopped' };
    }
  };
  run().then(reply, (err: unknown) => reply({ op: 'failed', error: String((err as Error)?.stack ?? err) }));
});
