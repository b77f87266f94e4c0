//! The read-only HTTP view (`bridge/API.md`): axum on hyper, behind the middleware a production service needs
//! (timeouts, a body limit, a concurrency limit, compression, request tracing), serving snapshots of the watch
//! cache (`snapshot`): a request authenticates, is authorised (and filtered to the namespaces its caller may
//! list), picks prepared bytes and writes them.

pub mod auth;
pub mod changes;
pub mod model;
pub mod server;
pub mod snapshot;
pub mod tls;

use std::{sync::Arc, time::Duration};

use apiportal_core::{APIProduct, KeyPhase};
use axum::{
    Extension, Router,
    extract::{FromRequestParts, MatchedPath, Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use k8s_openapi::api::authentication::v1::UserInfo;
use kube::{Api, Client};
use serde::Deserialize;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::{
    compression::CompressionLayer, limit::RequestBodyLimitLayer, timeout::TimeoutLayer, trace::TraceLayer,
};

use self::{
    auth::{Access, AuthError, Authorizer, Namespaces},
    changes::{Filter, Version},
    model::{ErrorBody, ErrorDetail},
    server::ClientAddr,
    snapshot::{ListKey, Prepared, Snapshot},
};
use crate::{caches::Caches, metrics::Metrics};

/// OpenAPI documents kept in memory for the view, by size.
const DOCUMENT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

pub struct View {
    pub caches: Caches,
    pub auth: Authorizer,
    pub metrics: Arc<Metrics>,
    pub snapshot: Arc<snapshot::Current>,
    pub documents: Documents,
    /// The bridge's background tasks: one that stopped fails both probes.
    pub tasks: crate::supervise::Supervisor,
}

/// OpenAPI documents: kept out of the watch cache (they may be large), read from the API server when asked and
/// kept in a bounded cache keyed by the product's UID and the document's sync time.
pub struct Documents {
    client: Client,
    cache: moka::future::Cache<(String, String, String), Arc<String>>,
}

impl Documents {
    pub fn new(client: Client) -> Self {
        let cache = moka::future::Cache::builder()
            .weigher(|_, v: &Arc<String>| v.len().min(u32::MAX as usize) as u32)
            .max_capacity(DOCUMENT_CACHE_BYTES)
            .build();
        Self { client, cache }
    }

    async fn get(
        &self,
        namespace: &str,
        name: &str,
        version: &(String, String),
    ) -> Result<Option<Arc<String>>, ApiError> {
        let key = (format!("{namespace}/{name}"), version.0.clone(), version.1.clone());
        if let Some(doc) = self.cache.get(&key).await {
            return Ok(Some(doc));
        }
        let product = Api::<APIProduct>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| ApiError::unavailable(format!("cannot read product {namespace}/{name}: {e}")))?;
        let Some(raw) = product.and_then(|p| p.status?.openapi).map(|o| Arc::new(o.raw)) else { return Ok(None) };
        self.cache.insert(key, raw.clone()).await;
        Ok(Some(raw))
    }
}

/// Which endpoints a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// The JSON API, probes and metrics.
    All,
    /// Only probes and metrics (the metrics port).
    ProbesAndMetrics,
}

pub struct Limits {
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
}

/// The view's routes and middleware.
pub fn router(view: Arc<View>, endpoints: Endpoints, limits: &Limits) -> Router {
    let mut routes =
        Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics));
    if endpoints == Endpoints::All {
        routes = routes
            .route("/api/v1/products", get(list_products))
            .route("/api/v1/products/{namespace}/{name}", get(get_product))
            .route("/api/v1/products/{namespace}/{name}/openapi", get(get_openapi))
            .route("/api/v1/keys", get(list_keys));
    }
    routes
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "NotFound", "no such endpoint; see /api/v1/products")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "the view is read-only: use GET")
        })
        .layer(middleware::from_fn_with_state(view.clone(), track))
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(16 * 1024))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limits.request_timeout))
        .layer(ConcurrencyLimitLayer::new(limits.max_concurrent_requests.max(1)))
        .layer(TraceLayer::new_for_http())
        .with_state(view)
}

/// An answer other than 200: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    /// 410, as Kubernetes answers a watch from a resourceVersion it no longer has.
    fn expired(since: Version) -> Self {
        Self::new(
            StatusCode::GONE,
            "Expired",
            format!(
                "this bridge cannot tell what changed since version {since}: it is too old, from before the bridge restarted, from another replica, or of a list with another scope; read the whole list (the same request without since) and ask for changes since the version it carries"
            ),
        )
    }

    fn forbidden(user: &UserInfo, access: &Access) -> Self {
        let scope = access
            .namespace
            .as_ref()
            .map(|ns| format!("in namespace {ns:?}"))
            .unwrap_or_else(|| "in any namespace".into());
        let what = if access.resource.is_empty() {
            access.name.clone().unwrap_or_default()
        } else {
            access.resource.to_owned()
        };
        let who = user.username.clone().unwrap_or_default();
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "user {who:?} may not {} {what} {scope}; that needs the same RBAC rights as with kubectl",
                access.verb
            ),
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => {
                Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", format!("{m}; send Authorization: Bearer <token>"))
            }
            AuthError::RateLimited => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "too many unknown tokens from this client; retry in a minute",
            ),
            AuthError::Unavailable(m) => Self::unavailable(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"apiportal\""));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

/// A query string with only the parameters `T` names: anything else is a 400 that lists them.
pub struct Strict<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Strict<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Strict(q))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductsQuery {
    namespace: Option<String>,
    /// Include Draft products.
    #[serde(default)]
    all: bool,
    /// Only what changed since this version of the same list.
    since: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysQuery {
    namespace: Option<String>,
    /// `NAMESPACE/NAME`
    product: Option<String>,
    phase: Option<KeyPhase>,
    /// Only keys for this application (`spec.application`).
    application: Option<String>,
}

/// A Kubernetes namespace or object name as the API server accepts it (DNS subdomain).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

fn valid_namespace(ns: Option<&str>) -> Result<(), ApiError> {
    match ns {
        Some(ns) if !valid_name(ns) || ns.len() > 63 => Err(ApiError::bad_request(format!("invalid namespace {ns:?}"))),
        _ => Ok(()),
    }
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or("")
}

impl View {
    /// Periodic upkeep of bounded state.
    pub async fn housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            self.auth.forget_idle_clients();
        }
    }

    /// The snapshot, or 503 while the caches sync (an empty answer would read as "no products" and empty a
    /// catalog).
    fn snapshot(&self) -> Result<Arc<Snapshot>, ApiError> {
        self.snapshot
            .get()
            .ok_or_else(|| ApiError::unavailable("the bridge's watch caches are still syncing; retry shortly"))
    }

    async fn caller(&self, headers: &HeaderMap, client: ClientAddr) -> Result<Arc<UserInfo>, ApiError> {
        Ok(self.auth.authenticate(bearer(headers), client.0.ip()).await?)
    }

    async fn require(&self, user: &UserInfo, access: Access) -> Result<(), ApiError> {
        if self.auth.authorize(user, &access).await? { Ok(()) } else { Err(ApiError::forbidden(user, &access)) }
    }

    /// The snapshot, once the caller is known to be allowed to `get` product `namespace/name`. A name no object
    /// can have is 404 before any TokenReview is spent on it.
    async fn readable_product(
        &self,
        headers: &HeaderMap,
        client: ClientAddr,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Snapshot>, ApiError> {
        if !valid_name(namespace) || !valid_name(name) {
            return Err(ApiError::not_found(format!("no product {namespace}/{name}")));
        }
        let snapshot = self.snapshot()?;
        let user = self.caller(headers, client).await?;
        let access = Access {
            verb: "get",
            resource: "apiproducts",
            namespace: Some(namespace.to_owned()),
            name: Some(name.to_owned()),
        };
        self.require(&user, access).await?;
        Ok(snapshot)
    }

    /// The namespaces `user` may list `resource` in: `Some(ns)` when a namespace was asked for; else every
    /// namespace (`None`), or those among `candidates` they may list; 403 when none.
    async fn scope(
        &self,
        user: &UserInfo,
        resource: &'static str,
        asked: Option<&str>,
        candidates: &[String],
    ) -> Result<Option<Vec<String>>, ApiError> {
        if let Some(ns) = asked {
            self.require(user, Access::list(resource, Some(ns))).await?;
            return Ok(Some(vec![ns.to_owned()]));
        }
        match self.auth.namespaces(user, resource, candidates).await? {
            Namespaces::All => Ok(None),
            Namespaces::Some(ns) if ns.is_empty() => Err(ApiError::forbidden(user, &Access::list(resource, None))),
            Namespaces::Some(ns) => Ok(Some(ns)),
        }
    }
}

/// Whether the client takes gzip (`Accept-Encoding`, ignoring `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let q_zero = parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !q_zero
        },
    )
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for If-None-Match: `W/` and the
/// gzip suffix do not matter).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let core = |tag: &str| tag.trim().trim_start_matches("W/").trim_matches('"').trim_end_matches("-gzip").to_owned();
    let wanted = core(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || core(tag) == wanted)
}

fn with_cache_headers(mut response: Response, etag: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_str(etag).expect("hex ETag"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding, Authorization"));
    response
}

/// A prepared list: the gzip bytes when asked for (no compression per request), 304 when unchanged.
fn send_prepared(headers: &HeaderMap, body: &Prepared) -> Response {
    let gzip = accepts_gzip(headers);
    let etag = if gzip { format!("{}-gzip\"", body.etag.trim_end_matches('"')) } else { body.etag.clone() };
    if not_modified(headers, &etag) {
        return with_cache_headers(StatusCode::NOT_MODIFIED.into_response(), &etag);
    }
    let mut response = if gzip { body.gzip.clone().into_response() } else { body.json.clone().into_response() };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if gzip {
        response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    with_cache_headers(response, &etag)
}

/// One object's bytes (compressed on the way out if asked, so its ETag is weak).
fn send_one(headers: &HeaderMap, content_type: &'static str, body: bytes::Bytes, strong: &str) -> Response {
    let etag = format!("W/{strong}");
    if not_modified(headers, &etag) {
        return with_cache_headers(StatusCode::NOT_MODIFIED.into_response(), &etag);
    }
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    with_cache_headers(response, &etag)
}

async fn list_products(
    State(view): State<Arc<View>>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    Strict(query): Strict<ProductsQuery>,
) -> Result<Response, ApiError> {
    valid_namespace(query.namespace.as_deref())?;
    let since = query.since.as_deref().map(Version::parse).transpose().map_err(ApiError::bad_request)?;
    let snapshot = view.snapshot()?;
    let user = view.caller(&headers, client).await?;
    let namespaces =
        view.scope(&user, "apiproducts", query.namespace.as_deref(), &snapshot.product_namespaces()).await?;
    let Some(since) = since else {
        return Ok(send_prepared(&headers, &snapshot.list(ListKey::Products { drafts: query.all, namespaces })));
    };
    let changes = snapshot
        .changes(since, Filter { drafts: query.all, namespaces: &namespaces })
        .ok_or_else(|| ApiError::expired(since))?;
    let mut response = changes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Encoding, Authorization"));
    Ok(response)
}

async fn get_product(
    State(view): State<Arc<View>>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    Strict(_): Strict<NoQuery>,
) -> Result<Response, ApiError> {
    let snapshot = view.readable_product(&headers, client, &namespace, &name).await?;
    let entry = snapshot
        .product(&namespace, &name)
        .ok_or_else(|| ApiError::not_found(format!("product {namespace}/{name} not found")))?;
    Ok(send_one(&headers, "application/json", entry.json.clone(), &entry.etag))
}

/// Endpoints that take no query parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

async fn get_openapi(
    State(view): State<Arc<View>>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    Path((namespace, name)): Path<(String, String)>,
    Strict(_): Strict<NoQuery>,
) -> Result<Response, ApiError> {
    let snapshot = view.readable_product(&headers, client, &namespace, &name).await?;
    let missing = || ApiError::not_found(format!("product {namespace}/{name} has no OpenAPI document"));
    let version = snapshot.product(&namespace, &name).and_then(|p| p.openapi.clone()).ok_or_else(missing)?;
    let document = view.documents.get(&namespace, &name, &version).await?.ok_or_else(missing)?;
    let tag = snapshot::etag(document.as_bytes());
    Ok(send_one(&headers, "text/plain; charset=utf-8", bytes::Bytes::from(document.as_str().to_owned()), &tag))
}

async fn list_keys(
    State(view): State<Arc<View>>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    Strict(query): Strict<KeysQuery>,
) -> Result<Response, ApiError> {
    valid_namespace(query.namespace.as_deref())?;
    let product = match query.product.as_deref().map(|p| p.split_once('/')) {
        None => None,
        Some(Some((ns, name))) if valid_name(ns) && valid_name(name) => Some((ns.to_owned(), name.to_owned())),
        Some(_) => return Err(ApiError::bad_request("invalid product: use product=NAMESPACE/NAME")),
    };
    if let Some(application) =
        query.application.as_deref().filter(|a| !valid_name(a) || a.contains('.') || a.len() > 63)
    {
        return Err(ApiError::bad_request(format!(
            "invalid application {application:?}: an application is a DNS label (lowercase letters, digits and '-', at most 63)"
        )));
    }
    let snapshot = view.snapshot()?;
    let user = view.caller(&headers, client).await?;
    let namespaces = view.scope(&user, "apikeys", query.namespace.as_deref(), &snapshot.key_namespaces()).await?;
    let key = ListKey::Keys { namespaces, product, phase: query.phase, application: query.application };
    Ok(send_prepared(&headers, &snapshot.list(key)))
}

/// A probe's answer when a background task stopped: which one (the cause, which may quote data, is in the log).
fn task_stopped(failure: &crate::supervise::Failure) -> Response {
    let text = format!("background task {:?} stopped; see the bridge's log\n", failure.task);
    (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
}

async fn healthz(State(view): State<Arc<View>>) -> Response {
    match view.tasks.check() {
        Ok(()) => "ok\n".into_response(),
        Err(failure) => task_stopped(&failure),
    }
}

async fn readyz(State(view): State<Arc<View>>) -> Response {
    if let Err(failure) = view.tasks.check() {
        return task_stopped(&failure);
    }
    match view.snapshot.get() {
        Some(_) => "ok\n".into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "watch caches not synced yet\n").into_response(),
    }
}

/// Metrics need a token allowed to `get` the non-resource URL `/metrics` (Kubernetes' `system:monitoring` role
/// grants it): every endpoint but the health probes needs authentication.
async fn metrics(
    State(view): State<Arc<View>>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = view.caller(&headers, client).await?;
    view.require(&user, Access::url("/metrics")).await?;
    let mut response = view.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

/// Counts each request by route and status, and times it.
async fn track(State(view): State<Arc<View>>, request: Request, next: Next) -> Response {
    let route = match request.extensions().get::<MatchedPath>().map(MatchedPath::as_str) {
        Some("/api/v1/products") => "products",
        Some("/api/v1/products/{namespace}/{name}") => "product",
        Some("/api/v1/products/{namespace}/{name}/openapi") => "openapi",
        Some("/api/v1/keys") => "keys",
        Some("/metrics") => "metrics",
        Some("/healthz") => "healthz",
        Some("/readyz") => "readyz",
        _ => "other",
    };
    let start = std::time::Instant::now();
    let response = next.run(request).await;
    let labels = crate::metrics::RequestLabels { route, code: response.status().as_u16() };
    view.metrics.http_requests.get_or_create(&labels).inc();
    view.metrics
        .http_request_seconds
        .get_or_create(&crate::metrics::RouteLabels { route })
        .observe(start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_take_it() {
        assert!(accepts_gzip(&headers(&[("accept-encoding", "gzip, deflate, br")])));
        assert!(accepts_gzip(&headers(&[("accept-encoding", "br;q=1.0, gzip;q=0.5")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&headers(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&headers(&[])));
    }

    #[test]
    fn if_none_match_compares_weakly_across_encodings() {
        let tag = "\"abc123\"";
        assert!(not_modified(&headers(&[("if-none-match", "\"abc123\"")]), tag));
        assert!(not_modified(&headers(&[("if-none-match", "W/\"abc123\"")]), tag));
        assert!(not_modified(&headers(&[("if-none-match", "\"other\", \"abc123-gzip\"")]), tag));
        assert!(not_modified(&headers(&[("if-none-match", "*")]), tag));
        assert!(!not_modified(&headers(&[("if-none-match", "\"abc12\"")]), tag));
        assert!(!not_modified(&headers(&[]), tag));
    }
}
