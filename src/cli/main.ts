import type { Command } from 'commander';
import { caCommand } from './ca.ts';
import { applyCommand, deleteCommand, getCommand } from './config.ts';
import { controlCommand } from './control.ts';
import { dashboardCommand } from './dashboard.ts';
import { demoCommand } from './demo.ts';
import { labCommand } from './lab.ts';
import { derivedViews, describeCommand, proxyStatusCommand } from './mesh.ts';
import { prometheusCommand } from './prometheus.ts';
import { programOf, runProgram } from './run.ts';
import { sampleCommand } from './sample.ts';
import { sidecarCommand } from './sidecar.ts';
import { statCommand } from './stat.ts';
import { checkCommand, downCommand, upCommand } from './up.ts';
import { waypointCommand } from './waypoint.ts';
import { ztunnelCommand, ztunnelConfigCommand } from './ztunnel.ts';

export function buildProgram(): Command {
  return programOf([
    upCommand(),
    downCommand(),
    demoCommand(),
    checkCommand(),
    labCommand(),
    sampleCommand(),
    controlCommand(),
    applyCommand(),
    getCommand(derivedViews),
    describeCommand(),
    proxyStatusCommand(),
    ztunnelCommand(),
    sidecarCommand(),
    ztunnelConfigCommand(),
    waypointCommand(),
    deleteCommand(),
    caCommand(),
    prometheusCommand(),
    dashboardCommand(),
    statCommand(),
  ]);
}

export function main(argv: string[]): Promise<void> {
  return runProgram(buildProgram(), argv);
}
