/*
 * Reading one apiportal bridge's HTTP view (bridge/API.md): the product list, what changed in it since a version,
 * the approved keys (with ETag revalidation), and a product's OpenAPI document. Every JSON answer is validated against the bridge's view schema
 * before it is used. Every failure becomes an `ApiportalReadError` whose message says which URL failed, why, and
 * what to do about it, so the entity provider can log one clear warning and keep the last good catalog.
 */
import { fetch as undiciFetch, type Dispatcher, type RequestInit, type Response } from 'undici';
import type { BridgeTls, TokenSource } from './credentials';
import { defaultViewSchema, ViewSchemaError, type ViewSchema } from './schema';
import { cleanStrings, cleanText } from './text';
import type { KeyList, ProductChanges, ProductList } from './types';

/** Default time allowed for one request to the bridge, headers and body included. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** The `fetch` the client uses: undici's, so that the CA-bound dispatcher applies. Replaceable in tests. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** How to reach one bridge. */
export interface BridgeClientOptions {
  /** The bridge's base URL, e.g. `https://apiportal-bridge.apiportal-system.svc` (port 443). */
  baseUrl: string;
  /** Where the bearer token comes from (read for every request, so a rotated token file is used at once). */
  token: TokenSource;
  /** The bridge's CA, for https; without it Node's default trust store applies. */
  tls?: BridgeTls;
  /** The view schema responses are validated against; default: the package's copy. */
  schema?: ViewSchema;
  /** Per-request timeout, default 10 s. */
  timeoutMs?: number;
  /** For tests: the `fetch` to use instead of undici's. */
  fetch?: FetchLike;
}

/** A failed read: the bridge is down, slow, refused the request or answered something that is not the contract. */
export class ApiportalReadError extends Error {
  /** HTTP status when the bridge answered, else undefined. */
  readonly status?: number;
  /** `error.code` of the bridge's error body when there was one. */
  readonly code?: string;
  /** From `Retry-After` on a 429 or 503, in milliseconds. */
  readonly retryAfterMs?: number;

  constructor(
    message: string,
    options: { status?: number; code?: string; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiportalReadError';
    this.status = options.status;
    this.code = options.code;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** What changed in the product list since a version, or why the bridge cannot tell (410 Expired). */
export type ChangesRead = { expired: true; reason: string } | { expired: false; value: ProductChanges };

/** The result of a conditional read. */
export type ConditionalRead<T> =
  /** 304: unchanged since `etag`. */
  | { notModified: true; etag: string }
  | { notModified: false; etag?: string; value: T };

export interface ReadOptions {
  /** Sends `If-None-Match` with exactly this value (as the bridge sent it, `-gzip` suffix and all). */
  etag?: string;
  /** Cancels the request, e.g. when the scheduled task times out or the backend stops. */
  signal?: AbortSignal;
}

/** `baseUrl` without trailing slashes. */
export function normalizeBaseUrl(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '');
}

/** `<baseUrl>/api/v1/products/<ns>/<name>`: the product's own URL on the bridge. */
export function productUrl(baseUrl: string, namespace: string, name: string): string {
  return `${normalizeBaseUrl(baseUrl)}/api/v1/products/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;
}

/** A client for one bridge's view. */
export class BridgeClient {
  readonly baseUrl: string;
  private readonly options: BridgeClientOptions;

  constructor(options: BridgeClientOptions) {
    this.options = options;
    this.baseUrl = normalizeBaseUrl(options.baseUrl);
  }

  private get schema(): ViewSchema {
    return this.options.schema ?? defaultViewSchema();
  }

  /**
   * `GET /api/v1/products`: published products, and the namespaces the token may list. Throws `ApiportalReadError`
   * on anything but a 304 or a 2xx list that matches the schema.
   */
  async readProducts(request: ReadOptions = {}): Promise<ConditionalRead<ProductList>> {
    const url = `${this.baseUrl}/api/v1/products`;
    const answer = await this.get(url, request, 'application/json');
    if (answer.notModified) return answer;
    const json = this.decode(url, answer.response, answer.body, 'ProductList');
    return { notModified: false, etag: answer.etag, value: cleanStrings(json as ProductList) };
  }

  /**
   * `GET /api/v1/products?since=VERSION`: what changed in the product list since `VERSION` (the `version` of an
   * earlier list or change answer), or `expired` when the bridge answers 410 (the version is too old, from another
   * replica or from before a restart: read the whole list). Throws `ApiportalReadError` like `readProducts`.
   */
  async readProductChanges(since: string, request: { signal?: AbortSignal } = {}): Promise<ChangesRead> {
    const url = `${this.baseUrl}/api/v1/products?since=${encodeURIComponent(since)}`;
    const answer = await this.get(url, request, 'application/json', [410]);
    if (answer.notModified) {
      throw new ApiportalReadError(`apiportal bridge GET ${url} answered 304 to a request without If-None-Match`, {
        status: 304,
      });
    }
    if (answer.absent) {
      const error = parseErrorBody(answer.body, this.schema);
      return { expired: true, reason: error ? `${error.code}: ${error.message}` : `410: ${excerpt(answer.body)}` };
    }
    const json = this.decode(url, answer.response, answer.body, 'ProductChanges');
    return { expired: false, value: cleanStrings(json as ProductChanges) };
  }

  /**
   * `GET /api/v1/keys?phase=Approved`: approved API keys (metadata only). Throws `ApiportalReadError` like
   * `readProducts`; a 403 (the token may not list keys cluster-wide) has `status` 403.
   */
  async readApprovedKeys(request: ReadOptions = {}): Promise<ConditionalRead<KeyList>> {
    const url = `${this.baseUrl}/api/v1/keys?phase=Approved`;
    const answer = await this.get(url, request, 'application/json');
    if (answer.notModified) return answer;
    const json = this.decode(url, answer.response, answer.body, 'KeyList');
    const list = cleanStrings(json as KeyList);
    // The bridge filters by phase; filter again so an older bridge that ignores `phase` cannot inflate counts.
    list.items = list.items.filter(k => k.phase === 'Approved');
    return { notModified: false, etag: answer.etag, value: list };
  }

  /**
   * `GET /api/v1/products/{ns}/{name}/openapi`: the OpenAPI document as text (JSON or YAML), or `undefined` when
   * the bridge has none (404). Throws `ApiportalReadError` on other failures.
   */
  async readOpenApi(namespace: string, name: string, request: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    const url = `${productUrl(this.baseUrl, namespace, name)}/openapi`;
    const answer = await this.get(url, request, 'application/json, application/yaml, text/plain, */*', [404]);
    if (answer.notModified) {
      throw new ApiportalReadError(`apiportal bridge GET ${url} answered 304 to a request without If-None-Match`, {
        status: 304,
      });
    }
    return answer.absent ? undefined : cleanText(answer.body, { multiline: true });
  }

  private decode(
    url: string,
    response: Response,
    body: string,
    definition: 'ProductList' | 'ProductChanges' | 'KeyList',
  ): unknown {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch (e) {
      throw new ApiportalReadError(
        `apiportal bridge GET ${url} answered ${response.status} with a body that is not JSON: ${excerpt(body)}`,
        { status: response.status, cause: e },
      );
    }
    try {
      this.schema.check(definition, json);
    } catch (e) {
      if (!(e instanceof ViewSchemaError)) throw e;
      throw new ApiportalReadError(
        `apiportal bridge GET ${url} answered ${response.status} with a body that ${e.message}`,
        { status: response.status, cause: e },
      );
    }
    return json;
  }

  private async get(
    url: string,
    request: ReadOptions,
    accept: string,
    absentOn: number[] = [],
  ): Promise<
    | { notModified: true; etag: string }
    | { notModified: false; absent: boolean; etag?: string; response: Response; body: string }
  > {
    const doFetch = this.options.fetch ?? (undiciFetch as FetchLike);
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    // One signal for the headers and the body, so a bridge that stalls mid-body also times out.
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
    const headers: Record<string, string> = { Accept: accept, 'Accept-Encoding': 'gzip' };
    if (request.etag) headers['If-None-Match'] = request.etag;

    let token: string;
    let dispatcher: Dispatcher | undefined;
    try {
      token = await this.options.token.token();
      dispatcher = await this.options.tls?.dispatcher();
    } catch (e) {
      throw new ApiportalReadError(`apiportal bridge GET ${url} not sent: ${(e as Error).message}`, { cause: e });
    }
    headers.Authorization = `Bearer ${token}`;

    let response: Response;
    let body: string;
    try {
      response = await doFetch(url, { method: 'GET', headers, signal, redirect: 'error', dispatcher });
      // undici decompresses a gzip body here.
      body = await response.text();
    } catch (e) {
      const reason = request.signal?.aborted
        ? 'the refresh was cancelled (task timeout or shutdown)'
        : describeFetchError(e, timeoutMs);
      throw new ApiportalReadError(`apiportal bridge GET ${url} failed: ${reason}`, { cause: e });
    }
    const etag = response.headers.get('etag') ?? undefined;
    if (response.status === 304) {
      return { notModified: true, etag: etag ?? request.etag ?? '' };
    }
    if (absentOn.includes(response.status)) {
      return { notModified: false, absent: true, etag, response, body };
    }
    if (response.status < 200 || response.status > 299) {
      const error = parseErrorBody(body, this.schema);
      const retryAfterMs =
        response.status === 429 || response.status === 503
          ? parseRetryAfter(response.headers.get('retry-after'))
          : undefined;
      throw new ApiportalReadError(
        `apiportal bridge GET ${url} answered ${response.status}${
          error ? ` ${error.code}: ${error.message}` : `: ${excerpt(body)}`
        }${this.hint(response.status, url, retryAfterMs)}`,
        { status: response.status, code: error?.code, retryAfterMs },
      );
    }
    return { notModified: false, absent: false, etag, response, body };
  }

  private hint(status: number, url: string, retryAfterMs: number | undefined): string {
    const retry = retryAfterMs === undefined ? '' : `; it asked to retry after ${Math.ceil(retryAfterMs / 1000)} s`;
    switch (status) {
      case 401:
        return ` (the bridge did not accept the token from ${this.options.token.description}: it must be a token the API server accepts for the audience apiportal-bridge)`;
      case 403:
        return url.includes('/api/v1/keys')
          ? " (the token's ServiceAccount needs the apiportal-key-reader ClusterRole, bound cluster-wide)"
          : " (the token's ServiceAccount needs the apiportal-catalog-reader ClusterRole, bound cluster-wide)";
      case 429:
        return ` (rate limited${retry})`;
      case 503:
        return ` (the bridge is not ready or cannot reach the API server${retry})`;
      default:
        return '';
    }
  }
}

/** `Retry-After` as milliseconds: delay-seconds or an HTTP date. Undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const TLS_HINTS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "set caFile to the CA that signed the bridge's certificate",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "set caFile to the CA that signed the bridge's certificate",
  SELF_SIGNED_CERT_IN_CHAIN: "set caFile to the CA that signed the bridge's certificate",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the bridge's certificate is self-signed: give it one signed by a CA, and set caFile to that CA",
  ERR_TLS_CERT_ALTNAME_INVALID: "the bridge's certificate does not name the host in baseUrl",
  CERT_HAS_EXPIRED: "the bridge's certificate has expired",
};

function describeFetchError(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') {
    return `no complete answer within ${timeoutMs} ms (timed out)`;
  }
  const cause = err?.cause;
  if (cause && (cause.code || cause.message)) {
    const hint = cause.code ? TLS_HINTS[cause.code] : undefined;
    return `${err.message ?? String(e)} (${[cause.code, cause.message].filter(Boolean).join(': ')})${
      hint ? `: ${hint}` : ''
    }`;
  }
  return err?.message ?? String(e);
}

function parseErrorBody(body: string, schema: ViewSchema): { code: string; message: string } | undefined {
  try {
    const json = JSON.parse(body);
    if (schema.matches('Error', json) && isObject(json.error) && typeof json.error.code === 'string') {
      return { code: cleanText(json.error.code), message: cleanText(String(json.error.message ?? '')) };
    }
  } catch {
    // not the contract's error body; the caller shows an excerpt instead
  }
  return undefined;
}

function excerpt(body: string): string {
  const oneLine = cleanText(body).replace(/\s+/g, ' ').trim();
  if (oneLine === '') {
    return '(empty body)';
  }
  return JSON.stringify(oneLine.length > 200 ? `${oneLine.slice(0, 200)}…` : oneLine);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
