/*
 * Entity names: unique per product (and per cluster when more than one is configured), valid Backstage names, and
 * the same on every run for the same configuration.
 */
import { createHash } from 'node:crypto';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const MAX_NAME = 63;
const HASH_LENGTH = 10;

/**
 * A Backstage entity name for the product `namespace/name`, in `cluster` when given:
 * - `<namespace>--<name>` (e.g. `shop--toys`), or `<cluster>--<namespace>--<name>` (e.g. `eu--shop--toys`), when that
 *   is a valid name of at most 63 characters and neither the cluster nor the namespace has a `--` of its own (so
 *   the first `--` ends the cluster and the next one the namespace: two products cannot share a name);
 * - otherwise the sanitised, truncated form followed by `_` and 10 hex characters of a SHA-256 of
 *   `namespace/name` (or `cluster/namespace/name`). Kubernetes names never contain `_`, so such a name can never
 *   equal a plain one, and the hash keeps truncated names apart.
 *
 * @public
 */
export function entityName(namespace: string, name: string, cluster?: string): string {
  const prefix = cluster === undefined ? [namespace] : [cluster, namespace];
  const plain = [...prefix, name].join('--');
  if (
    plain.length <= MAX_NAME &&
    prefix.every(part => DNS_LABEL.test(part) && !part.includes('--')) &&
    K8S_NAME.test(name)
  ) {
    return plain;
  }
  const hash = createHash('sha256')
    .update([...prefix, name].join('/'))
    .digest('hex')
    .slice(0, HASH_LENGTH);
  const readable = plain
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, MAX_NAME - HASH_LENGTH - 1)
    .replace(/[^a-z0-9]+$/, '');
  return `${readable || 'apiportal'}_${hash}`;
}

/** True for a valid cluster name: a DNS label (lowercase letters, digits, `-`; at most 63 characters). */
export function isValidClusterName(cluster: string): boolean {
  return cluster.length <= MAX_NAME && DNS_LABEL.test(cluster);
}
