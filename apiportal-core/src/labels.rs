//! Label, annotation and finalizer names, as Kuadrant's Developer Portal and Authorino use them.

pub const APIPRODUCT: &str = "devportal.kuadrant.io/apiproduct";
pub const APIPRODUCT_NAMESPACE: &str = "devportal.kuadrant.io/apiproduct-namespace";
pub const APIKEY: &str = "devportal.kuadrant.io/apikey";
pub const APIKEY_NAMESPACE: &str = "devportal.kuadrant.io/apikey-namespace";
/// Authorino only reads Secrets carrying this label (its default `secretLabelSelector`).
pub const AUTHORINO_MANAGED_BY: &str = "authorino.kuadrant.io/managed-by";
pub const AUTHORINO_MANAGED_BY_VALUE: &str = "authorino";
pub const PLAN_ID: &str = "secret.kuadrant.io/plan-id";
pub const USER_ID: &str = "secret.kuadrant.io/user-id";
pub const EXPIRES_AT: &str = "secret.kuadrant.io/expires-at";
/// Marks an HTTPRoute as one the platform team lets owners build products on.
pub const EXPOSE: &str = "devportal.kuadrant.io/expose";
/// The Backstage owner of a product, as Kuadrant's Backstage plugin reads it.
pub const BACKSTAGE_OWNER: &str = "backstage.io/owner";
/// Holds an APIKey until the bridge has removed its enforcement Secret (which lives in another namespace, so
/// garbage collection through ownerReferences cannot reach it).
pub const APIKEY_FINALIZER: &str = "devportal.kuadrant.io/enforcement-secret";
/// Field manager for everything `kubectl apiportal` writes with server-side apply.
pub const PLUGIN_FIELD_MANAGER: &str = "kubectl-apiportal";
/// Field manager for everything the bridge writes with server-side apply.
pub const BRIDGE_FIELD_MANAGER: &str = "apiportal-bridge";
/// Key inside the enforcement copy that holds the API key: the one Authorino reads.
pub const SECRET_KEY: &str = "api_key";
/// Key inside the consumer's copy that holds the API key: deliberately not Authorino's, so the consumer's copy can
/// never be accepted at the gateway, whatever AuthPolicy anyone writes (one with `allNamespaces: true` and a broad
/// selector reads every namespace's Secrets).
pub const CONSUMER_SECRET_KEY: &str = "key";
/// Marks the enforcement copies of keys (as upstream's controller does), so they can be listed and watched.
pub const ENFORCEMENT: &str = "devportal.kuadrant.io/enforcement";
/// On both copies: which value of the key (0, then one more per rotation) the Secret holds.
pub const KEY_GENERATION: &str = "devportal.kuadrant.io/key-generation";
/// On the enforcement copy: the UID of the APIKey it was issued for (a recreated APIKey of the same name is
/// another request).
pub const APIKEY_UID: &str = "devportal.kuadrant.io/apikey-uid";
/// On the enforcement copy: the UID of the APIProduct it was issued for.
pub const APIPRODUCT_UID: &str = "devportal.kuadrant.io/apiproduct-uid";
/// On an APIKeyRequest: a digest of what it projects, so the bridge caches projections as metadata only.
pub const PROJECTION_DIGEST: &str = "devportal.kuadrant.io/projection-digest";
