/*
 * Who owns a product's entity and which system it belongs to decide who may act on it in Backstage, and where it
 * shows up. Everything a product carries (annotations, labels, contact) is written by the product's owner, so by
 * default neither comes from the product: the platform maps namespaces, which it controls, to owners and systems.
 * Owner-written sources count only where the platform's configuration enables them, and then only when they are
 * valid entity references.
 */
import { makeValidator, parseEntityRef } from '@backstage/catalog-model';
import type { Product } from '../apiportal/types';

/** Where an owner may come from, in the order the platform lists them. */
export const OWNER_SOURCES = [
  /** `owner.namespaces[<product namespace>]`: the platform's own mapping. */
  'namespace',
  /** The product's `contact.team`: written by the product's owner. */
  'contactTeam',
  /** The product's `backstage.io/owner` annotation: written by the product's owner. */
  'annotation',
] as const;
export type OwnerSource = (typeof OWNER_SOURCES)[number];

/** Where a system may come from. */
export const SYSTEM_SOURCES = [
  /** `system.namespaces[<product namespace>]`: the platform's own mapping. */
  'namespace',
  /** The product's `system` label: written by the product's owner. */
  'label',
  /** The product's `backstage.io/system` annotation: written by the product's owner. */
  'annotation',
] as const;
export type SystemSource = (typeof SYSTEM_SOURCES)[number];

/**
 * The configured sources of owners or systems, tried in order, and the platform's mapping of product namespaces.
 *
 * @public
 */
export interface SourcePolicy<Source extends string> {
  from: Source[];
  namespaces: Record<string, string>;
}

/** @public */
export type OwnerPolicy = SourcePolicy<OwnerSource>;
/** @public */
export type SystemPolicy = SourcePolicy<SystemSource>;

/** Only the platform's mapping, unless configured otherwise. */
export const DEFAULT_OWNER_POLICY: OwnerPolicy = { from: ['namespace'], namespaces: {} };
export const DEFAULT_SYSTEM_POLICY: SystemPolicy = { from: ['namespace'], namespaces: {} };

export const ANNOTATION_BACKSTAGE_OWNER = 'backstage.io/owner';
export const ANNOTATION_BACKSTAGE_SYSTEM = 'backstage.io/system';
/** In `defaultOwner`, stands for the product's namespace. */
export const NAMESPACE_PLACEHOLDER = '{namespace}';

const validator = makeValidator();

/** Whether `value` is an entity reference (`name`, `kind:name` or `kind:namespace/name`) the catalog accepts. */
export function isEntityRef(value: string, defaultKind: 'group' | 'system'): boolean {
  try {
    const ref = parseEntityRef(value, { defaultKind, defaultNamespace: 'default' });
    return validator.isValidKind(ref.kind) && validator.isValidNamespace(ref.namespace) && validator.isValidEntityName(ref.name);
  } catch {
    return false;
  }
}

/**
 * The product's owner: the first of `policy.from` that gives a valid entity reference, else `defaultOwner` with
 * `{namespace}` replaced by the product's namespace. Never empty.
 */
export function ownerOf(product: Product, policy: OwnerPolicy, defaultOwner: string): string {
  const candidates: Record<OwnerSource, () => string | null | undefined> = {
    namespace: () => policy.namespaces[product.namespace],
    contactTeam: () => product.contact?.team,
    annotation: () => product.annotations[ANNOTATION_BACKSTAGE_OWNER],
  };
  for (const source of policy.from) {
    const owner = candidates[source]()?.trim();
    if (owner && isEntityRef(owner, 'group')) return owner;
  }
  const fallback = defaultOwner.split(NAMESPACE_PLACEHOLDER).join(product.namespace).trim();
  return fallback && isEntityRef(fallback, 'group') ? fallback : 'unknown';
}

/** The product's system: the first of `policy.from` that gives a valid entity reference, else none. */
export function systemOf(product: Product, policy: SystemPolicy): string | undefined {
  const candidates: Record<SystemSource, () => string | null | undefined> = {
    namespace: () => policy.namespaces[product.namespace],
    label: () => product.labels.system,
    annotation: () => product.annotations[ANNOTATION_BACKSTAGE_SYSTEM],
  };
  for (const source of policy.from) {
    const system = candidates[source]()?.trim();
    if (system && isEntityRef(system, 'system')) return system;
  }
  return undefined;
}
