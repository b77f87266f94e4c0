/*
 * Reading the apiportal bridge's HTTP view (bridge/API.md): the product list, with ETag revalidation, and a
 * product's OpenAPI document. Every failure becomes an `ApiportalReadError` whose message says which URL failed
 * and why, so the entity provider can log one clear warning and keep the last good catalog.
 */
import type {
  AuthScheme,
  Condition,
  Oidc,
  OpenApiState,
  Plan,
  PlanLimits,
  Product,
  ProductContact,
  ProductDocumentation,
  ProductRoute,
} from './types';

/** Default time allowed for one request to the bridge, headers and body included. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** How to reach the bridge. */
export interface BridgeClientOptions {
  /** The bridge's base URL, e.g. `http://apiportal-bridge.apiportal-system.svc:8080`. */
  baseUrl: string;
  /** Bearer token the bridge checks with TokenReview (a ServiceAccount token). */
  token: string;
  /** Per-request timeout, default 10 s. */
  timeoutMs?: number;
  /** For tests: a `fetch` to use instead of the global one. */
  fetch?: typeof fetch;
  /** Aborts every request, e.g. when the scheduled task times out or the backend stops. */
  signal?: AbortSignal;
}

/** A failed read: the bridge is down, slow, refused the request or answered something that is not the contract. */
export class ApiportalReadError extends Error {
  /** HTTP status when the bridge answered, else undefined. */
  readonly status?: number;
  /** `error.code` of the bridge's error body when there was one. */
  readonly code?: string;

  constructor(message: string, options: { status?: number; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiportalReadError';
    this.status = options.status;
    this.code = options.code;
  }
}

export type ReadProductsResult =
  /** 304: the list has not changed since `etag`. */
  | { notModified: true; etag: string }
  | { notModified: false; etag?: string; products: Product[] };

/** `baseUrl` without trailing slashes. */
export function normalizeBaseUrl(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}

/** `<baseUrl>/api/v1/products/<ns>/<name>`: the product's own URL on the bridge. */
export function productUrl(baseUrl: string, namespace: string, name: string): string {
  return `${normalizeBaseUrl(baseUrl)}/api/v1/products/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

/**
 * `GET /api/v1/products`. With `etag`, sends `If-None-Match` and returns `{ notModified: true }` on 304.
 * Throws `ApiportalReadError` on anything but a 2xx list that matches the contract, or a 304.
 */
export async function readProducts(
  options: BridgeClientOptions,
  request: { etag?: string } = {},
): Promise<ReadProductsResult> {
  const url = `${normalizeBaseUrl(options.baseUrl)}/api/v1/products`;
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (request.etag) {
    headers['If-None-Match'] = request.etag;
  }
  const { response, body } = await get(options, url, headers);
  if (response.status === 304) {
    return { notModified: true, etag: response.headers.get('etag') ?? request.etag ?? '' };
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    throw new ApiportalReadError(
      `apiportal bridge GET ${url} answered ${response.status} with a body that is not JSON: ${excerpt(body)}`,
      { status: response.status, cause: e },
    );
  }
  let products: Product[];
  try {
    products = parseProductList(json);
  } catch (e) {
    throw new ApiportalReadError(
      `apiportal bridge GET ${url} answered ${response.status} with a body that is not a product list: ${
        (e as Error).message
      }`,
      { status: response.status, cause: e },
    );
  }
  return { notModified: false, etag: response.headers.get('etag') ?? undefined, products };
}

/**
 * `GET /api/v1/products/{ns}/{name}/openapi`: the OpenAPI document as text (JSON or YAML), or `undefined` when
 * the bridge has none (404). Throws `ApiportalReadError` on other failures.
 */
export async function readOpenApi(
  options: BridgeClientOptions,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  const url = `${productUrl(options.baseUrl, namespace, name)}/openapi`;
  const { body } = await get(options, url, { Accept: 'application/json, application/yaml, text/plain, */*' }, [404]);
  return body;
}

async function get(
  options: BridgeClientOptions,
  url: string,
  headers: Record<string, string>,
): Promise<{ response: Response; body: string }>;
async function get(
  options: BridgeClientOptions,
  url: string,
  headers: Record<string, string>,
  absentOn: number[],
): Promise<{ response: Response; body: string | undefined }>;
async function get(
  options: BridgeClientOptions,
  url: string,
  headers: Record<string, string>,
  absentOn: number[] = [],
): Promise<{ response: Response; body: string | undefined }> {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  // One signal for the headers and the body, so a bridge that stalls mid-body also times out.
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  let response: Response;
  let body: string;
  try {
    response = await doFetch(url, {
      method: 'GET',
      headers: { ...headers, Authorization: `Bearer ${options.token}` },
      signal,
      redirect: 'error',
    });
    body = await response.text();
  } catch (e) {
    const reason = options.signal?.aborted
      ? 'the refresh was cancelled (task timeout or shutdown)'
      : describeFetchError(e, timeoutMs);
    throw new ApiportalReadError(`apiportal bridge GET ${url} failed: ${reason}`, { cause: e });
  }
  if (response.status === 304) {
    return { response, body };
  }
  if (absentOn.includes(response.status)) {
    return { response, body: undefined };
  }
  if (response.status < 200 || response.status > 299) {
    const error = parseErrorBody(body);
    const hint =
      response.status === 401
        ? ' (check catalog.providers.apiportal.token: the bridge did not accept it)'
        : response.status === 403
          ? " (the token's ServiceAccount needs the apiportal-catalog-reader ClusterRole, bound cluster-wide)"
          : '';
    throw new ApiportalReadError(
      `apiportal bridge GET ${url} answered ${response.status}${
        error ? ` ${error.code}: ${error.message}` : `: ${excerpt(body)}`
      }${hint}`,
      { status: response.status, code: error?.code },
    );
  }
  return { response, body };
}

function describeFetchError(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') {
    return `no complete answer within ${timeoutMs} ms (timed out)`;
  }
  const cause = err?.cause;
  if (cause && (cause.code || cause.message)) {
    return `${err.message ?? String(e)} (${[cause.code, cause.message].filter(Boolean).join(': ')})`;
  }
  return err?.message ?? String(e);
}

function parseErrorBody(body: string): { code: string; message: string } | undefined {
  try {
    const json = JSON.parse(body);
    if (json && typeof json.error === 'object' && json.error && typeof json.error.code === 'string') {
      return { code: json.error.code, message: String(json.error.message ?? '') };
    }
  } catch {
    // not the contract's error body; the caller shows an excerpt instead
  }
  return undefined;
}

function excerpt(body: string): string {
  const oneLine = body.replace(/\s+/g, ' ').trim();
  if (oneLine === '') {
    return '(empty body)';
  }
  return JSON.stringify(oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine);
}

/*
 * Validation and normalisation. A list whose shape is wrong, or with an item that has no namespace or name, is
 * rejected as a whole: applying part of it as a full mutation would delete the rest from the catalog. Optional
 * fields of the wrong type are treated as absent.
 */

/** Checks a decoded `GET /api/v1/products` body and returns its products with every field present. */
export function parseProductList(json: unknown): Product[] {
  if (!isObject(json)) {
    throw new Error('expected a JSON object with "items"');
  }
  if (!Array.isArray(json.items)) {
    throw new Error('"items" is not an array');
  }
  return json.items.map((item, index) => parseProduct(item, index));
}

export function parseProduct(item: unknown, index = 0): Product {
  if (!isObject(item)) {
    throw new Error(`items[${index}] is not an object`);
  }
  const namespace = str(item.namespace);
  const name = str(item.name);
  if (!namespace || !name) {
    throw new Error(`items[${index}] has no "namespace" and "name" strings`);
  }
  return {
    namespace,
    name,
    uid: str(item.uid) ?? `${namespace}/${name}`,
    generation: typeof item.generation === 'number' ? item.generation : null,
    createdAt: str(item.createdAt),
    displayName: str(item.displayName),
    description: str(item.description),
    version: str(item.version),
    tags: Array.isArray(item.tags) ? item.tags.filter((t): t is string => typeof t === 'string') : [],
    labels: stringMap(item.labels),
    annotations: stringMap(item.annotations),
    approvalMode: str(item.approvalMode) ?? 'manual',
    publishStatus: str(item.publishStatus) ?? '',
    route: parseRoute(item.route),
    documentation: parseDocumentation(item.documentation),
    contact: parseContact(item.contact),
    plans: Array.isArray(item.plans) ? item.plans.flatMap(parsePlan) : [],
    authScheme: isObject(item.authScheme) ? (item.authScheme as AuthScheme) : null,
    oidc: parseOidc(item.oidc),
    openapi: parseOpenApiState(item.openapi),
    ready: typeof item.ready === 'boolean' ? item.ready : null,
    conditions: Array.isArray(item.conditions) ? item.conditions.flatMap(parseCondition) : [],
  };
}

function parseRoute(v: unknown): ProductRoute | null {
  if (!isObject(v)) return null;
  return {
    name: str(v.name),
    hostnames: Array.isArray(v.hostnames) ? v.hostnames.filter((h): h is string => typeof h === 'string') : [],
  };
}

function parseDocumentation(v: unknown): ProductDocumentation | null {
  if (!isObject(v)) return null;
  return {
    openAPISpecURL: str(v.openAPISpecURL),
    swaggerUI: str(v.swaggerUI),
    docsURL: str(v.docsURL),
    gitRepository: str(v.gitRepository),
    techdocsRef: str(v.techdocsRef),
  };
}

function parseContact(v: unknown): ProductContact | null {
  if (!isObject(v)) return null;
  return { team: str(v.team), email: str(v.email), slack: str(v.slack), url: str(v.url) };
}

function parsePlan(v: unknown): Plan[] {
  if (!isObject(v) || !str(v.tier)) return [];
  const limits: PlanLimits = {};
  if (isObject(v.limits)) {
    for (const key of ['daily', 'weekly', 'monthly', 'yearly'] as const) {
      const n = v.limits[key];
      if (typeof n === 'number') limits[key] = n;
    }
    if (Array.isArray(v.limits.custom)) {
      const custom = v.limits.custom.flatMap(c =>
        isObject(c) && typeof c.limit === 'number' && typeof c.window === 'string'
          ? [{ limit: c.limit, window: c.window }]
          : [],
      );
      if (custom.length) limits.custom = custom;
    }
  }
  return [{ tier: str(v.tier)!, description: str(v.description), limits }];
}

function parseOidc(v: unknown): Oidc | null {
  if (!isObject(v)) return null;
  return { issuerUrl: str(v.issuerUrl), tokenEndpoint: str(v.tokenEndpoint) };
}

function parseOpenApiState(v: unknown): OpenApiState | null {
  if (!isObject(v)) return null;
  return { available: v.available === true, lastSyncTime: str(v.lastSyncTime) };
}

function parseCondition(v: unknown): Condition[] {
  if (!isObject(v) || !str(v.type)) return [];
  return [{ type: str(v.type)!, status: str(v.status) ?? 'Unknown', reason: str(v.reason), message: str(v.message) }];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (isObject(v)) {
    for (const [k, val] of Object.entries(v)) {
      if (typeof val === 'string') out[k] = val;
    }
  }
  return out;
}
