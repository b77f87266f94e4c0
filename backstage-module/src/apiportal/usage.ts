/*
 * Who consumes an API: from the bridge's approved keys (metadata only), the number of distinct consumers per
 * product, per plan and per application. A consumer is a `requestedBy.userId`: one person with two approved keys on
 * the same plan counts once; with keys on two plans, once per plan and once in the product's total. Only Approved
 * keys count: a Suspended key (cut off at the gateway until resumed), a Pending, Rejected, Revoked or Expired one
 * does not.
 */
import type { Key } from './types';

/** Approved consumers of one product. */
export interface ProductUsage {
  /** Distinct consumers across all plans. */
  consumers: number;
  /** Distinct consumers per plan tier; only tiers with at least one approved consumer (the plans in use). */
  consumersByPlan: Record<string, number>;
  /**
   * Distinct consumers per application (`<consumer namespace>/<application>`: an application is named per
   * namespace), for keys that name one; only applications with at least one approved key.
   */
  consumersByApplication: Record<string, number>;
}

/** `namespace/name` of a product, the key of `usageByProduct`'s map. */
export function productKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** `<namespace>/<application>` of a key that names an application. */
export function applicationOf(key: Key): string | undefined {
  return key.application ? `${key.namespace}/${key.application}` : undefined;
}

/** Adds `user` to the set under `group`. */
function addTo(groups: Map<string, Set<string>>, group: string, user: string) {
  let users = groups.get(group);
  if (!users) {
    users = new Set();
    groups.set(group, users);
  }
  users.add(user);
}

/** Counts per group, sorted by group, so the annotation's text (and the entity's hash) does not depend on order. */
function counts(groups: Map<string, Set<string>>): Record<string, number> {
  return Object.fromEntries(
    [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([group, users]) => [group, users.size]),
  );
}

/** Usage per product (`namespace/name`), from approved keys; products without approved keys are absent. */
export function usageByProduct(keys: Key[]): Map<string, ProductUsage> {
  const users = new Map<string, { all: Set<string>; byPlan: Map<string, Set<string>>; byApp: Map<string, Set<string>> }>();
  for (const key of keys) {
    if (key.phase !== 'Approved') continue;
    const id = productKey(key.product.namespace, key.product.name);
    let entry = users.get(id);
    if (!entry) {
      entry = { all: new Set(), byPlan: new Map(), byApp: new Map() };
      users.set(id, entry);
    }
    const user = key.requestedBy.userId;
    entry.all.add(user);
    addTo(entry.byPlan, key.planTier, user);
    const application = applicationOf(key);
    if (application) addTo(entry.byApp, application, user);
  }
  const out = new Map<string, ProductUsage>();
  for (const [id, entry] of users) {
    out.set(id, {
      consumers: entry.all.size,
      consumersByPlan: counts(entry.byPlan),
      consumersByApplication: counts(entry.byApp),
    });
  }
  return out;
}

/** The usage of a product with no approved keys. */
export const NO_USAGE: ProductUsage = Object.freeze({
  consumers: 0,
  consumersByPlan: Object.freeze({}),
  consumersByApplication: Object.freeze({}),
}) as ProductUsage;
