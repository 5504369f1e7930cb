// The dashboard's front door: what `ambit dashboard` and `ambit stat` are built from.

export {
  type AdminApi,
  type CertStatus,
  DashboardData,
  type Describe,
  type ServiceView,
  type WorkloadView,
} from './data.ts';
export { DASHBOARD_ERRORS } from './errors.ts';
export { WINDOWS, type Window } from './model.ts';
export { PrometheusApi, parsePrometheusUrl } from './prometheus-api.ts';
export { dashboardServer } from './server.ts';
export { Sources } from './sources.ts';
export { parseStatPeer, parseStatTarget, type StatInventory, type StatRow, statRows } from './stat.ts';
