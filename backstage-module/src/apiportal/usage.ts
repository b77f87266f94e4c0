/*
 * Who consumes an API: from the bridge's approved keys (metadata only), the number of distinct consumers per
 * product and per plan. A consumer is a `requestedBy.userId`: one person with two approved keys on the same plan
 * counts once; with keys on two plans, once per plan and once in the product's total.
 */
import type { Key } from './types';

/** Approved consumers of one product. */
export interface ProductUsage {
  /** Distinct consumers across all plans. */
  consumers: number;
  /** Distinct consumers per plan tier; only tiers with at least one approved consumer (the plans in use). */
  consumersByPlan: Record<string, number>;
}

/** `namespace/name` of a product, the key of `usageByProduct`'s map. */
export function productKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Usage per product (`namespace/name`), from approved keys; products without approved keys are absent. */
export function usageByProduct(keys: Key[]): Map<string, ProductUsage> {
  const users = new Map<string, { all: Set<string>; byPlan: Map<string, Set<string>> }>();
  for (const key of keys) {
    if (key.phase !== 'Approved') continue;
    const id = productKey(key.product.namespace, key.product.name);
    let entry = users.get(id);
    if (!entry) {
      entry = { all: new Set(), byPlan: new Map() };
      users.set(id, entry);
    }
    entry.all.add(key.requestedBy.userId);
    let plan = entry.byPlan.get(key.planTier);
    if (!plan) {
      plan = new Set();
      entry.byPlan.set(key.planTier, plan);
    }
    plan.add(key.requestedBy.userId);
  }
  const out = new Map<string, ProductUsage>();
  for (const [id, entry] of users) {
    // Sorted by tier, so the annotation's text (and the entity's hash) does not depend on the order of keys.
    const consumersByPlan = Object.fromEntries(
      [...entry.byPlan.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([tier, set]) => [tier, set.size]),
    );
    out.set(id, { consumers: entry.all.size, consumersByPlan });
  }
  return out;
}

/** The usage of a product with no approved keys. */
export const NO_USAGE: ProductUsage = Object.freeze({ consumers: 0, consumersByPlan: Object.freeze({}) }) as ProductUsage;
