/*
 * Mapping apiportal products to Backstage `kind: API` entities.
 *
 * Unlike Kuadrant's upstream provider, the entity name includes the product's namespace (equal names in two
 * namespaces never collide) and a product without an owner annotation is never dropped (the owner falls back to
 * the contact team, then to the configured default).
 */
import { createHash } from 'node:crypto';
import {
  ANNOTATION_LOCATION,
  ANNOTATION_ORIGIN_LOCATION,
  ANNOTATION_SOURCE_LOCATION,
  type ApiEntityV1alpha1,
  type EntityLink,
} from '@backstage/catalog-model';
import { normalizeBaseUrl, productUrl } from './read';
import type { Product } from './types';

/** Annotations this module sets, besides Backstage's own. */
export const ANNOTATION_PRODUCT_NAMESPACE = 'apiportal.dev/product-namespace';
export const ANNOTATION_PRODUCT_NAME = 'apiportal.dev/product-name';
export const ANNOTATION_PRODUCT_UID = 'apiportal.dev/product-uid';
export const ANNOTATION_APPROVAL_MODE = 'apiportal.dev/approval-mode';
export const ANNOTATION_PLANS = 'apiportal.dev/plans';
export const ANNOTATION_AUTH_SCHEME = 'apiportal.dev/auth-scheme';
export const ANNOTATION_OIDC_TOKEN_ENDPOINT = 'apiportal.dev/oidc-token-endpoint';
export const ANNOTATION_TECHDOCS_REF = 'backstage.io/techdocs-ref';
/** Read from the product: who owns it, and which system it belongs to. */
export const ANNOTATION_BACKSTAGE_OWNER = 'backstage.io/owner';
export const ANNOTATION_BACKSTAGE_SYSTEM = 'backstage.io/system';

/** The tag every entity from this module carries. */
export const APIPORTAL_TAG = 'apiportal';

export interface TransformOptions {
  /** The bridge's base URL, used in location annotations. */
  baseUrl: string;
  /** Owner when the product has neither a `backstage.io/owner` annotation nor a contact team. */
  defaultOwner: string;
  /** Lifecycle when the product has no `lifecycle` label. */
  lifecycle: string;
}

/** `apiportal:<baseUrl>`: the location key of every entity this module emits for one bridge. */
export function locationKey(baseUrl: string): string {
  return `apiportal:${normalizeBaseUrl(baseUrl)}`;
}

/** Maps one published product to a `kind: API` entity. `definition` is the fetched OpenAPI text, if any. */
export function productToEntity(
  product: Product,
  options: TransformOptions,
  definition?: string,
): ApiEntityV1alpha1 {
  const location = `apiportal:${productUrl(options.baseUrl, product.namespace, product.name)}`;
  const docs = product.documentation;

  const annotations: Record<string, string> = {
    [ANNOTATION_LOCATION]: location,
    [ANNOTATION_ORIGIN_LOCATION]: location,
    [ANNOTATION_PRODUCT_NAMESPACE]: product.namespace,
    [ANNOTATION_PRODUCT_NAME]: product.name,
    [ANNOTATION_PRODUCT_UID]: product.uid,
    [ANNOTATION_APPROVAL_MODE]: product.approvalMode,
    [ANNOTATION_PLANS]: JSON.stringify(product.plans.map(p => ({ tier: p.tier, limits: p.limits }))),
    [ANNOTATION_AUTH_SCHEME]: authSchemeOf(product),
  };
  if (product.oidc?.tokenEndpoint) {
    annotations[ANNOTATION_OIDC_TOKEN_ENDPOINT] = product.oidc.tokenEndpoint;
  }
  if (docs?.gitRepository) {
    annotations[ANNOTATION_SOURCE_LOCATION] = docs.gitRepository.startsWith('url:')
      ? docs.gitRepository
      : `url:${docs.gitRepository}`;
  }
  if (docs?.techdocsRef) {
    annotations[ANNOTATION_TECHDOCS_REF] = docs.techdocsRef;
  }

  const metadata: ApiEntityV1alpha1['metadata'] = {
    name: entityName(product.namespace, product.name),
    namespace: 'default',
  };
  if (product.displayName) metadata.title = product.displayName;
  if (product.description) metadata.description = product.description;
  metadata.tags = entityTags(product.tags);
  const links = entityLinks(product);
  if (links.length) metadata.links = links;
  metadata.annotations = annotations;

  const spec: ApiEntityV1alpha1['spec'] = {
    type: 'openapi',
    lifecycle: lifecycleOf(product, options.lifecycle),
    owner: ownerOf(product, options.defaultOwner),
    definition: definition ?? stubDefinition(product),
  };
  const system = systemOf(product);
  if (system) spec.system = system;

  return { apiVersion: 'backstage.io/v1alpha1', kind: 'API', metadata, spec };
}

const K8S_NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const MAX_NAME = 63;
const HASH_LENGTH = 10;

/**
 * A Backstage entity name for the product `namespace/name`, unique per product:
 * - `<namespace>--<name>` (e.g. `shop--toys`) when that is a valid name of at most 63 characters and the
 *   namespace has no `--` of its own (so the first `--` always ends the namespace: two products cannot share it);
 * - otherwise the sanitised, truncated form followed by `_` and a hash of `namespace/name`. Kubernetes names never
 *   contain `_`, so such a name can never equal a plain one, and the hash keeps truncated names apart.
 */
export function entityName(namespace: string, name: string): string {
  const plain = `${namespace}--${name}`;
  if (
    plain.length <= MAX_NAME &&
    K8S_NAMESPACE.test(namespace) &&
    !namespace.includes('--') &&
    K8S_NAME.test(name)
  ) {
    return plain;
  }
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, HASH_LENGTH);
  const prefix = plain
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, MAX_NAME - HASH_LENGTH - 1)
    .replace(/[^a-z0-9]+$/, '');
  return `${prefix || 'apiportal'}_${hash}`;
}

/** A tag in Backstage's format (lowercase `[a-z0-9:+#]` words joined by `-`, at most 63), or undefined. */
export function sanitizeTag(tag: string): string | undefined {
  let t = tag
    .toLowerCase()
    .replace(/[^a-z0-9:+#]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (t.length > MAX_NAME) {
    t = t.slice(0, MAX_NAME).replace(/-+$/, '');
  }
  return t === '' ? undefined : t;
}

/** The product's tags in Backstage's format, deduplicated, plus `apiportal`. */
export function entityTags(tags: string[]): string[] {
  const out = new Set<string>();
  for (const tag of tags) {
    const t = sanitizeTag(tag);
    if (t) out.add(t);
  }
  out.add(APIPORTAL_TAG);
  return [...out];
}

/** Links to the product's documentation, OpenAPI document, Swagger UI, repository and contact page. */
export function entityLinks(product: Product): EntityLink[] {
  const docs = product.documentation;
  const candidates: (Omit<EntityLink, 'url'> & { url: string | null | undefined })[] = [
    { url: docs?.docsURL, title: 'Documentation', icon: 'docs', type: 'documentation' },
    { url: docs?.openAPISpecURL, title: 'OpenAPI specification', icon: 'code', type: 'openapi' },
    { url: docs?.swaggerUI, title: 'Swagger UI', icon: 'web', type: 'swagger-ui' },
    { url: stripUrlPrefix(docs?.gitRepository), title: 'Source repository', icon: 'github', type: 'source' },
    { url: product.contact?.url, title: 'Contact', icon: 'help', type: 'contact' },
  ];
  return candidates.flatMap(link => (isHttpUrl(link.url) ? [{ ...link, url: link.url }] : []));
}

/** `backstage.io/owner` annotation, else the contact team, else the configured default. Never empty. */
export function ownerOf(product: Product, defaultOwner: string): string {
  return (
    nonBlank(product.annotations[ANNOTATION_BACKSTAGE_OWNER]) ??
    nonBlank(product.contact?.team) ??
    nonBlank(defaultOwner) ??
    'unknown'
  );
}

/** The product's `lifecycle` label, else the configured default. */
export function lifecycleOf(product: Product, defaultLifecycle: string): string {
  return nonBlank(product.labels.lifecycle) ?? nonBlank(defaultLifecycle) ?? 'production';
}

/** `backstage.io/system` annotation, else the `system` label. */
export function systemOf(product: Product): string | undefined {
  return nonBlank(product.annotations[ANNOTATION_BACKSTAGE_SYSTEM]) ?? nonBlank(product.labels.system);
}

/** `api-key` when an AuthPolicy rule uses API keys, `oidc` when one uses JWT (or OIDC was found), else `none`. */
export function authSchemeOf(product: Product): 'api-key' | 'oidc' | 'none' {
  const rules = Object.values(product.authScheme?.authentication ?? {});
  if (rules.some(r => r && typeof r === 'object' && r.apiKey)) return 'api-key';
  if (rules.some(r => r && typeof r === 'object' && r.jwt) || product.oidc) return 'oidc';
  return 'none';
}

/**
 * A minimal valid OpenAPI 3.0 document (as JSON text) for a product whose own document the bridge does not have:
 * its title, version and description, and a server per route hostname.
 */
export function stubDefinition(product: Product): string {
  const info: Record<string, string> = {
    title: product.displayName ?? product.name,
    version: product.version ?? '0.0.0',
  };
  if (product.description) info.description = product.description;
  const doc: Record<string, unknown> = { openapi: '3.0.3', info };
  const hosts = (product.route?.hostnames ?? []).filter(h => h && !h.includes('*'));
  if (hosts.length) doc.servers = hosts.map(h => ({ url: `https://${h}` }));
  doc.paths = {};
  return JSON.stringify(doc, null, 2);
}

function stripUrlPrefix(v: string | null | undefined): string | undefined {
  if (!v) return undefined;
  return v.startsWith('url:') ? v.slice(4) : v;
}

function isHttpUrl(v: string | null | undefined): v is string {
  if (!v) return false;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

function nonBlank(v: string | null | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}
