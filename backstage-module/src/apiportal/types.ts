/*
 * The bridge's HTTP view, as documented in bridge/API.md of the apiportal repository and described by the JSON
 * Schema generated from the bridge's Rust types (bridge/api/view.schema.json, copied into this package as
 * schema/view.schema.json). Every response is validated against that schema before it is used (see `schema.ts`);
 * these types are the normalised form the module works with: fields whose value is unknown are `null`, arrays
 * and maps are empty rather than missing, and unknown fields are ignored, so a slightly newer bridge does not
 * break the catalog.
 */

/** `GET /api/v1/products` */
export interface ProductList {
  items: Product[];
  /** Which namespaces the caller's token may list; absent from bridges older than the `scope` field. */
  scope?: ProductListScope;
}

/** The namespaces a product list covers. */
export interface ProductListScope {
  /** True when the token may list products cluster-wide. */
  allNamespaces: boolean;
  /** When not cluster-wide: the namespaces the token may list (and the list covers). */
  namespaces: string[];
}

/** One API product as the bridge serves it. */
export interface Product {
  namespace: string;
  name: string;
  uid: string;
  generation: number | null;
  createdAt: string | null;
  displayName: string | null;
  description: string | null;
  version: string | null;
  tags: string[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  approvalMode: 'automatic' | 'manual' | string;
  publishStatus: 'Published' | 'Draft' | string;
  route: ProductRoute | null;
  documentation: ProductDocumentation | null;
  contact: ProductContact | null;
  plans: Plan[];
  authScheme: AuthScheme | null;
  oidc: Oidc | null;
  openapi: OpenApiState | null;
  ready: boolean | null;
  conditions: Condition[];
}

export interface ProductRoute {
  name: string | null;
  hostnames: string[];
}

export interface ProductDocumentation {
  openAPISpecURL: string | null;
  swaggerUI: string | null;
  docsURL: string | null;
  gitRepository: string | null;
  techdocsRef: string | null;
}

export interface ProductContact {
  team: string | null;
  email: string | null;
  slack: string | null;
  url: string | null;
}

export interface Plan {
  tier: string;
  description: string | null;
  limits: PlanLimits;
}

export interface PlanLimits {
  daily?: number | null;
  weekly?: number | null;
  monthly?: number | null;
  yearly?: number | null;
  custom?: { limit: number; window: string }[] | null;
}

/** The AuthPolicy's authentication rules as found (Kuadrant's shape), keyed by rule name. */
export interface AuthScheme {
  authentication?: Record<string, AuthenticationRule> | null;
}

export interface AuthenticationRule {
  apiKey?: {
    selector?: unknown;
    allNamespaces?: boolean | null;
  } | null;
  jwt?: { issuerUrl?: string | null } | null;
  credentials?: Record<string, unknown> | null;
}

export interface Oidc {
  issuerUrl: string | null;
  tokenEndpoint: string | null;
}

export interface OpenApiState {
  available: boolean;
  lastSyncTime: string | null;
}

export interface Condition {
  type: string;
  status: string;
  reason: string | null;
  message: string | null;
  lastTransitionTime: string | null;
}

/** `GET /api/v1/keys`: API key requests, metadata only (the view never serves key values). */
export interface KeyList {
  items: Key[];
  /** Which namespaces' keys the list covers; absent from bridges older than the `scope` field. */
  scope?: ProductListScope;
}

/** One APIKey (a consumer's request for access to a product on a plan). */
export interface Key {
  namespace: string;
  name: string;
  product: { namespace: string; name: string };
  planTier: string;
  requestedBy: { userId: string; email: string | null };
  phase: 'Pending' | 'Approved' | 'Rejected' | 'Revoked' | 'Expired' | string;
  createdAt: string | null;
  expiresAt: string | null;
}

/** The error body of every non-2xx answer except 304. */
export interface ErrorBody {
  error: { code: string; message: string };
}
