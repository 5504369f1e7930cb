// Who may do what through the admin API, decided as Kubernetes RBAC decides for its built-in cluster
// roles: `cluster-admin` does everything; `edit` reads and writes namespaced resources in its
// namespaces; `view` only reads them. Pure functions: the server asks, they answer or throw 403.

import { AmbitError } from '../../errors/index.ts';
import { CONTROL_ERRORS } from '../errors.ts';

export const ROLES = ['cluster-admin', 'edit', 'view'] as const;
export type Role = (typeof ROLES)[number];

/** Who is asking: a token's name and role, or the local socket's peer (cluster-admin). */
export interface Principal {
  /** Shown in messages as Kubernetes shows a user: `token:shop-ci`, `unix-socket:uid=0`. */
  user: string;
  role: Role;
  /** For `edit` and `view`: the namespaces the role applies in. Empty for cluster-admin. */
  namespaces: readonly string[];
}

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'delete';

export interface ResourceAttributes {
  verb: Verb;
  /** The kind's plural, as Kubernetes names the resource in messages (`services`). */
  resource: string;
  group: string;
  namespaced: boolean;
  /** The namespace the request acts in; undefined for a cluster-scoped kind or a list across namespaces. */
  namespace?: string;
  name?: string;
}

export const FORBIDDEN = CONTROL_ERRORS.API_FORBIDDEN;

const WRITES: ReadonlySet<Verb> = new Set(['create', 'update', 'delete']);

/**
 * Throws 403 Forbidden unless `p` may do `a`. A list or watch across every namespace needs
 * cluster-admin (Kubernetes answers 403 for a list it cannot show entirely, rather than filtering);
 * a namespaced role may read its own Namespace object, as a RoleBinding lets it in Kubernetes.
 */
export function authorize(p: Principal, a: ResourceAttributes): void {
  if (p.role === 'cluster-admin') return;
  if (WRITES.has(a.verb) && p.role !== 'edit') throw forbidden(p, a);
  const ns = a.namespaced
    ? a.namespace
    : a.resource === 'namespaces' && a.verb === 'get'
      ? a.name
      : undefined;
  if (ns === undefined || !p.namespaces.includes(ns)) throw forbidden(p, a);
}

/** Operations outside the resource paths (join tokens, admin tokens, node revocation, mesh-wide views). */
export function requireClusterAdmin(p: Principal, what: string): void {
  if (p.role !== 'cluster-admin') {
    throw new AmbitError(
      FORBIDDEN,
      `${what} is forbidden: User "${p.user}" (role ${p.role}) cannot use it; it needs a cluster-admin token`,
    );
  }
}

/** Whether `p` may read what lives in namespace `ns` (for filtering derived views). */
export function canRead(p: Principal, ns: string): boolean {
  return p.role === 'cluster-admin' || p.namespaces.includes(ns);
}

/** Kubernetes' wording: `services "web" is forbidden: User "x" cannot create resource "services" in API group "" in the namespace "shop"`. */
function forbidden(p: Principal, a: ResourceAttributes): AmbitError {
  const subject = a.name !== undefined ? `${a.resource} "${a.name}"` : a.resource;
  const scope =
    a.namespaced && a.namespace !== undefined ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  const allowed =
    p.namespaces.length > 0 ? ` (role ${p.role} in ${p.namespaces.join(', ')})` : ` (role ${p.role})`;
  return new AmbitError(
    FORBIDDEN,
    `${subject} is forbidden: User "${p.user}" cannot ${a.verb} resource "${a.resource}" in API group "${a.group}" ${scope}${allowed}`,
  );
}
