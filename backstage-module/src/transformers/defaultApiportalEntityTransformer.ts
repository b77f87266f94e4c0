/*
 * The default mapping of an apiportal product to a Backstage `kind: API` entity. Organisations that map
 * differently register their own transformer through `apiportalEntityProviderTransformExtensionPoint`, usually
 * by calling this one and changing its result.
 */
import {
  ANNOTATION_EDIT_URL,
  ANNOTATION_LOCATION,
  ANNOTATION_ORIGIN_LOCATION,
  ANNOTATION_SOURCE_LOCATION,
  ANNOTATION_VIEW_URL,
  type ApiEntityV1alpha1,
  type EntityLink,
} from '@backstage/catalog-model';
import { productUrl } from '../apiportal/read';
import type { Product } from '../apiportal/types';
import { entityName } from './entityName';
import { ownerOf, systemOf } from './ownership';
import type { ApiportalTransformContext } from './types';
import { safeUrl, urlReference } from './urls';

/** Annotations this module sets, besides Backstage's own. */
export const ANNOTATION_CLUSTER = 'apiportal.dev/cluster';
export const ANNOTATION_PRODUCT_NAMESPACE = 'apiportal.dev/product-namespace';
export const ANNOTATION_PRODUCT_NAME = 'apiportal.dev/product-name';
export const ANNOTATION_PRODUCT_UID = 'apiportal.dev/product-uid';
export const ANNOTATION_APPROVAL_MODE = 'apiportal.dev/approval-mode';
export const ANNOTATION_PLANS = 'apiportal.dev/plans';
export const ANNOTATION_AUTH_SCHEME = 'apiportal.dev/auth-scheme';
export const ANNOTATION_OIDC_TOKEN_ENDPOINT = 'apiportal.dev/oidc-token-endpoint';
export const ANNOTATION_CONSUMERS = 'apiportal.dev/consumers';
export const ANNOTATION_CONSUMERS_BY_PLAN = 'apiportal.dev/consumers-by-plan';
export const ANNOTATION_CONSUMERS_BY_APPLICATION = 'apiportal.dev/consumers-by-application';
/** Kuadrant's Backstage plugin finds the APIProduct behind an API entity with these two. */
export const ANNOTATION_KUADRANT_NAMESPACE = 'kuadrant.io/namespace';
export const ANNOTATION_KUADRANT_APIPRODUCT = 'kuadrant.io/apiproduct';
export const ANNOTATION_TECHDOCS_REF = 'backstage.io/techdocs-ref';

/** The tag every entity from this module carries. */
export const APIPORTAL_TAG = 'apiportal';

/** `apiportal:<baseUrl>/api/v1/products/<ns>/<name>`: the managed-by location of a product's entity. */
export function productLocation(baseUrl: string, namespace: string, name: string): string {
  return `apiportal:${productUrl(baseUrl, namespace, name)}`;
}

/**
 * Maps one published product to a `kind: API` entity (see the README's "What an entity looks like" for every
 * field and where it comes from).
 *
 * @public
 */
export function defaultApiportalEntityTransformer(
  product: Product,
  context: ApiportalTransformContext,
): ApiEntityV1alpha1 {
  const location = productLocation(context.baseUrl, product.namespace, product.name);
  const docs = product.documentation;

  const annotations: Record<string, string> = {
    [ANNOTATION_LOCATION]: location,
    [ANNOTATION_ORIGIN_LOCATION]: location,
    [ANNOTATION_CLUSTER]: context.cluster,
    [ANNOTATION_PRODUCT_NAMESPACE]: product.namespace,
    [ANNOTATION_PRODUCT_NAME]: product.name,
    ...(product.uid ? { [ANNOTATION_PRODUCT_UID]: product.uid } : {}),
    [ANNOTATION_KUADRANT_NAMESPACE]: product.namespace,
    [ANNOTATION_KUADRANT_APIPRODUCT]: product.name,
    [ANNOTATION_APPROVAL_MODE]: product.approvalMode,
    [ANNOTATION_PLANS]: JSON.stringify(product.plans.map(p => ({ tier: p.tier, limits: p.limits }))),
    [ANNOTATION_AUTH_SCHEME]: authSchemeOf(product),
  };
  const tokenEndpoint = safeUrl(product.oidc?.tokenEndpoint, context.allowedHosts);
  if (tokenEndpoint) annotations[ANNOTATION_OIDC_TOKEN_ENDPOINT] = tokenEndpoint;
  if (context.usage) {
    annotations[ANNOTATION_CONSUMERS] = String(context.usage.consumers);
    annotations[ANNOTATION_CONSUMERS_BY_PLAN] = JSON.stringify(context.usage.consumersByPlan);
    annotations[ANNOTATION_CONSUMERS_BY_APPLICATION] = JSON.stringify(context.usage.consumersByApplication);
  }
  const source = sourceLocationOf(product, context.allowedHosts);
  if (source) annotations[ANNOTATION_SOURCE_LOCATION] = source;
  const view = viewUrlOf(product, context.allowedHosts);
  if (view) annotations[ANNOTATION_VIEW_URL] = view;
  const edit = safeUrl(product.annotations[ANNOTATION_EDIT_URL], context.allowedHosts);
  if (edit) annotations[ANNOTATION_EDIT_URL] = edit;
  const techdocs =
    urlReference(docs?.techdocsRef, context.allowedHosts) ??
    urlReference(product.annotations[ANNOTATION_TECHDOCS_REF], context.allowedHosts);
  if (techdocs) annotations[ANNOTATION_TECHDOCS_REF] = techdocs;

  const metadata: ApiEntityV1alpha1['metadata'] = {
    name: entityName(product.namespace, product.name, context.clusterInName ? context.cluster : undefined),
    namespace: 'default',
  };
  if (product.displayName) metadata.title = product.displayName;
  if (product.description) metadata.description = product.description;
  metadata.tags = entityTags(product.tags);
  const links = entityLinks(product, context.allowedHosts);
  if (links.length) metadata.links = links;
  metadata.annotations = annotations;

  const spec: ApiEntityV1alpha1['spec'] = {
    type: 'openapi',
    lifecycle: lifecycleOf(product, context.lifecycle),
    owner: ownerOf(product, context.owner, context.defaultOwner),
    definition: context.definition ?? stubDefinition(product),
  };
  const system = systemOf(product, context.system);
  if (system) spec.system = system;

  return { apiVersion: 'backstage.io/v1alpha1', kind: 'API', metadata, spec };
}

/** A tag in Backstage's format (lowercase `[a-z0-9:+#]` words joined by `-`, at most 63), or undefined. */
export function sanitizeTag(tag: string): string | undefined {
  let t = tag
    .toLowerCase()
    .replace(/[^a-z0-9:+#]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (t.length > 63) {
    t = t.slice(0, 63).replace(/-+$/, '');
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

/**
 * Links to the product's documentation, OpenAPI document, Swagger UI, repository and contact page: those that are
 * http(s) URLs without credentials on an allowed host (see `safeUrl`).
 */
export function entityLinks(product: Product, allowedHosts: readonly string[] = []): EntityLink[] {
  const docs = product.documentation;
  const candidates: (Omit<EntityLink, 'url'> & { url: string | null | undefined })[] = [
    { url: docs?.docsURL, title: 'Documentation', icon: 'docs', type: 'documentation' },
    { url: docs?.openAPISpecURL, title: 'OpenAPI specification', icon: 'code', type: 'openapi' },
    { url: docs?.swaggerUI, title: 'Swagger UI', icon: 'web', type: 'swagger-ui' },
    { url: stripUrlPrefix(docs?.gitRepository), title: 'Source repository', icon: 'github', type: 'source' },
    { url: product.contact?.url, title: 'Contact', icon: 'help', type: 'contact' },
  ];
  return candidates.flatMap(link => {
    const url = safeUrl(link.url, allowedHosts);
    return url ? [{ ...link, url }] : [];
  });
}

/** The product's `lifecycle` label, else the configured default. */
export function lifecycleOf(product: Product, defaultLifecycle: string): string {
  return nonBlank(product.labels.lifecycle) ?? nonBlank(defaultLifecycle) ?? 'production';
}

/**
 * Where the product's source lives, as a Backstage `url:` location reference: the product's own
 * `backstage.io/source-location` annotation, else its documentation's `gitRepository`; only safe http(s) URLs (see
 * `urlReference`).
 */
export function sourceLocationOf(product: Product, allowedHosts: readonly string[] = []): string | undefined {
  return (
    urlReference(product.annotations[ANNOTATION_SOURCE_LOCATION], allowedHosts) ??
    urlReference(product.documentation?.gitRepository, allowedHosts)
  );
}

/**
 * Where a person can view the product's source: its own `backstage.io/view-url` annotation, else its
 * `gitRepository`; only safe http(s) URLs.
 */
export function viewUrlOf(product: Product, allowedHosts: readonly string[] = []): string | undefined {
  return (
    safeUrl(product.annotations[ANNOTATION_VIEW_URL], allowedHosts) ??
    safeUrl(stripUrlPrefix(product.documentation?.gitRepository), allowedHosts)
  );
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
    title: product.displayName || product.name,
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

function nonBlank(v: string | null | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}
