import { Command, InvalidArgumentError, Option } from 'commander';
import { SIDECAR_INJECT } from '../config/index.ts';
import { describeError } from '../errors/index.ts';
import { defaultLabName, forwardUnixToTcp, Lab, type LabStatus, parseLabels } from '../lab/index.ts';
import { AdminClient, localAdminServer } from './client.ts';
import { type ReplicaRow, replicaTable } from './mesh.ts';
import { table } from './output.ts';

function labFrom(cmd: Command): Lab {
  const opts = cmd.optsWithGlobals<{ lab?: string }>();
  return new Lab({ name: opts.lab ?? defaultLabName() });
}

function intArg(name: string) {
  return (value: string): number => {
    if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
    return Number(value);
  };
}

export function labCommand(): Command {
  const lab = new Command('lab')
    .description('a multi-node lab of network namespaces on this host (needs root)')
    .option('--lab <name>', 'which lab, to keep several apart (default: $AMBIT_LAB or "lab")');

  lab
    .command('up')
    .description('create the nodes, joined by a bridge in a namespace of its own')
    .option('--nodes <n>', 'number of nodes', intArg('--nodes'), 2)
    .action(async (opts: { nodes: number }, cmd: Command) => {
      const state = await labFrom(cmd).up(opts.nodes);
      console.log(`lab "${state.name}" is up with ${state.nodes} node(s)`);
    });

  lab
    .command('down')
    .description('remove every namespace, link, process and record of the lab')
    .action(async (_opts: unknown, cmd: Command) => {
      await labFrom(cmd).down();
      console.log('lab is down');
    });

  const pod = lab.command('pod').description('add or remove pods');
  pod
    .command('add <name>')
    .description('create a pod namespace on a node')
    .requiredOption('--node <node>', 'the node to place it on (node-1, node-2, …)')
    .option('--namespace <ns>', 'the mesh namespace it belongs to', 'default')
    .option('--service-account <sa>', 'its service account (its identity)', 'default')
    .option('--labels <k=v,…>', 'labels, comma-separated', '')
    .option(
      '--sidecar',
      'sidecar mode: label it sidecar.istio.io/inject=true, so its node runs its own proxy in it (with the mesh up)',
    )
    .action(
      async (
        name: string,
        opts: { node: string; namespace: string; serviceAccount: string; labels: string; sidecar?: boolean },
        cmd: Command,
      ) => {
        const labels = parseLabels(opts.labels);
        if (opts.sidecar) {
          if (labels[SIDECAR_INJECT] === 'false')
            throw new InvalidArgumentError(
              `--sidecar and the label ${SIDECAR_INJECT}=false contradict each other`,
            );
          labels[SIDECAR_INJECT] = 'true';
        }
        const record = await labFrom(cmd).addPod({
          name,
          node: opts.node,
          namespace: opts.namespace,
          serviceAccount: opts.serviceAccount,
          labels,
        });
        console.log(`pod ${record.name} is up on ${record.node} at ${record.address}`);
      },
    );
  pod
    .command('rm <name>')
    .description("stop the pod's processes and remove it")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await labFrom(cmd).removePod(name);
      console.log(`pod ${name} removed`);
    });

  lab
    .command('run <pod> <command...>')
    .description('start a long-running process in a pod or node (after --); output goes to a log file')
    .action(async (target: string, argv: string[], _opts: unknown, cmd: Command) => {
      const record = await labFrom(cmd).run(target, argv);
      console.log(`started pid ${record.pid} in ${target}; log: ${record.log}`);
    });

  lab
    .command('exec <pod> <command...>')
    .description('run a command in a pod or node (after --) and return its exit code')
    .action(async (target: string, argv: string[], _opts: unknown, cmd: Command) => {
      const result = await labFrom(cmd).exec(target, argv, { inherit: true });
      process.exitCode = result.code;
    });

  // Run by `ambit dashboard` and `ambit stat` in the bridge namespace (not for people: hidden).
  lab
    .command('forward', { hidden: true })
    .description(
      'serve a Unix socket that forwards to a loopback TCP port of this namespace (runs until killed)',
    )
    .requiredOption('--unix <path>', 'the socket to listen on')
    .requiredOption('--to <host:port>', 'a loopback address and port')
    .action(async (opts: { unix: string; to: string }) => {
      const at = opts.to.lastIndexOf(':');
      await forwardUnixToTcp(
        opts.unix,
        opts.to.slice(0, at).replace(/^\[|\]$/g, ''),
        Number(opts.to.slice(at + 1)),
      );
    });

  lab
    .command('status')
    .description('nodes, pods, addresses and processes')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'),
    )
    .action(async (opts: { output: string }, cmd: Command) => {
      const lab = labFrom(cmd);
      const status = await lab.status();
      // The control plane as its replicas see it, when one runs: which replica each proxy is on, the store's health.
      const controlRuns =
        status && [status.control, ...status.hosts].some((h) => h.processes.some((p) => p.running));
      const control = controlRuns ? await controlPlaneView(lab.home) : undefined;
      if (opts.output === 'json') {
        console.log(
          JSON.stringify(
            { ...(status ?? { nodes: [], pods: [] }), ...(control ? { controlPlane: control } : {}) },
            null,
            2,
          ),
        );
      } else {
        console.log(status ? formatStatus(status) : 'the lab is down');
        if (control) console.log(`\n${formatControl(control)}`);
      }
    });

  return lab;
}

type ControlView =
  | {
      replicas: { self: string; items: ReplicaRow[] };
      proxies: Array<{ name: string; kind: string; controlPlane: string; state: string }>;
    }
  | { error: string };

async function controlPlaneView(home: string): Promise<ControlView> {
  // A status must not wait on a replica that hangs: a short timeout, and the next replica is not tried.
  const admin = new AdminClient(localAdminServer(home), undefined, { timeoutMs: 3_000 });
  try {
    const replicas = await admin.call<{ self: string; items: ReplicaRow[] }>('GET', '/ambit/v1/replicas');
    const proxies = await admin.call<{
      items: Array<{ name: string; kind: string; controlPlane: string; state: string }>;
    }>('GET', '/ambit/v1/proxies');
    return {
      replicas,
      proxies: proxies.items.map(({ name, kind, controlPlane, state }) => ({
        name,
        kind,
        controlPlane,
        state,
      })),
    };
  } catch (err) {
    return { error: describeError(err) };
  }
}

function formatControl(view: ControlView): string {
  if ('error' in view) return `control plane: not answering (${view.error})`;
  const proxies = table(
    ['PROXY', 'KIND', 'CONTROL PLANE', 'STATE'],
    view.proxies.map((p) => [p.name, p.kind, p.controlPlane, p.state]),
  );
  return `${replicaTable(view.replicas)}\n\n${proxies}`;
}

function formatStatus(status: LabStatus): string {
  const running = (ps: Array<{ running: boolean }>) => String(ps.filter((p) => p.running).length);
  const nodes = table(
    ['NODE', 'ADDRESS', 'PROCESSES'],
    [
      ...status.nodes.map((n) => [n.name, n.address, running(n.processes)]),
      ...(status.control.processes.length > 0
        ? [['control', status.control.address, running(status.control.processes)]]
        : []),
      ...status.hosts.map((h) => [h.name, h.address, running(h.processes)]),
    ],
  );
  const pods = table(
    ['POD', 'NODE', 'ADDRESS', 'NAMESPACE', 'SERVICE ACCOUNT', 'LABELS', 'PROCESSES'],
    status.pods.map((p) => [
      p.name,
      p.node,
      p.address,
      p.namespace,
      p.serviceAccount,
      Object.entries(p.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',') || '-',
      p.processes.map((x) => `${x.pid}${x.running ? '' : ' (exited)'}`).join(' ') || '-',
    ]),
  );
  return `${nodes}\n\n${pods}`;
}
