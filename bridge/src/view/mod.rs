//! The read-only HTTP view: JSON over hyper, served from the watch cache (never a LIST per request), with
//! strong ETags, bearer-token authentication and RBAC authorisation. See `bridge/API.md`.

pub mod auth;
pub mod model;

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, server::conn::http1, service::service_fn};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use k8s_openapi::api::authentication::v1::UserInfo;
use kube::ResourceExt;
use tokio::{net::TcpListener, sync::watch};

use self::{
    auth::{Access, AuthError, Authorizer},
    model::{KeyList, KeyView, ProductList, ProductView, Scope},
};
use crate::{caches::Caches, metrics::Metrics};

pub struct View {
    pub caches: Caches,
    pub auth: Authorizer,
    pub metrics: Arc<Metrics>,
}

/// Which endpoints a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Endpoints {
    /// The JSON API, probes and metrics.
    All,
    /// Only probes and metrics (the metrics port).
    ProbesAndMetrics,
}

type Reply = Response<Full<Bytes>>;

/// Serves until `shutdown` flips, then lets open requests finish (up to 10s).
pub async fn serve(listener: TcpListener, view: Arc<View>, endpoints: Endpoints, mut shutdown: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let view = view.clone();
                let service = service_fn(move |req| {
                    let view = view.clone();
                    async move { Ok::<_, Infallible>(handle(&view, req, endpoints).await) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}

async fn handle(view: &View, req: Request<Incoming>, endpoints: Endpoints) -> Reply {
    let (route, reply) = route(view, &req, endpoints).await;
    view.metrics
        .http_requests
        .get_or_create(&crate::metrics::RequestLabels { route, code: reply.status().as_u16() })
        .inc();
    if req.method() == Method::HEAD {
        let (parts, _) = reply.into_parts();
        return Response::from_parts(parts, Full::new(Bytes::new()));
    }
    reply
}

fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("valid response")
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Reply {
    let body = serde_json::json!({"error": {"code": code, "message": message.into()}});
    let mut reply = text(status, "application/json", serde_json::to_vec(&body).expect("JSON"));
    if status == StatusCode::UNAUTHORIZED {
        reply
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"apiportal\""));
    }
    reply
}

/// Serves `body` with a strong ETag, or 304 when the client already has it.
fn cacheable(req: &Request<Incoming>, content_type: &str, body: Vec<u8>) -> Reply {
    let tag = {
        use sha2::{Digest, Sha256};
        let hex: String = Sha256::digest(&body).iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|candidate| candidate.trim() == tag || candidate.trim() == "*"));
    let mut reply = if matches {
        text(StatusCode::NOT_MODIFIED, content_type, Bytes::new())
    } else {
        text(StatusCode::OK, content_type, body)
    };
    reply.headers_mut().insert(header::ETAG, header::HeaderValue::from_str(&tag).expect("hex ETag"));
    reply.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("private, no-cache"));
    reply
}

fn json<T: serde::Serialize>(req: &Request<Incoming>, value: &T) -> Reply {
    cacheable(req, "application/json", serde_json::to_vec(value).expect("view types serialise"))
}

fn bearer_token(req: &Request<Incoming>) -> &str {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or("")
}

/// A Kubernetes namespace or object name as the API server accepts it (DNS subdomain).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(req: &Request<Incoming>, allowed: &[&str]) -> Result<Self, String> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (key, _) in &pairs {
            if !allowed.contains(&key.as_str()) {
                return Err(format!("unknown query parameter {key:?}; allowed: {}", allowed.join(", ")));
            }
        }
        Ok(Self(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn namespace(&self) -> Result<Option<&str>, String> {
        match self.get("namespace") {
            None => Ok(None),
            Some(ns) if valid_name(ns) && ns.len() <= 63 => Ok(Some(ns)),
            Some(ns) => Err(format!("invalid namespace {ns:?}")),
        }
    }
}

/// Who is calling: the bearer token reviewed by the API server, or the 401/503 to answer instead.
async fn authenticate(view: &View, req: &Request<Incoming>) -> Result<UserInfo, Box<Reply>> {
    match view.auth.authenticate(bearer_token(req)).await {
        Ok(user) => Ok(user),
        Err(AuthError::Unauthenticated(m)) => Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("{m}; send Authorization: Bearer <token>"),
        ))),
        Err(AuthError::Unavailable(m)) => Err(Box::new(error(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", m))),
    }
}

/// Metrics need a token allowed to `get` the non-resource URL `/metrics` (Kubernetes' `system:monitoring`
/// role grants it): every endpoint but the health probes needs authentication.
async fn metrics(view: &View, req: &Request<Incoming>) -> Reply {
    let user = match authenticate(view, req).await {
        Ok(user) => user,
        Err(reply) => return *reply,
    };
    match view.auth.authorize(&user, &Access::url("/metrics")).await {
        Ok(true) => {
            text(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", view.metrics.render())
        }
        Ok(false) => {
            let who = user.username.unwrap_or_default();
            error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!("user {who:?} may not get /metrics; bind the system:monitoring ClusterRole"),
            )
        }
        Err(AuthError::Unavailable(m) | AuthError::Unauthenticated(m)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", m)
        }
    }
}

async fn route(view: &View, req: &Request<Incoming>, endpoints: Endpoints) -> (&'static str, Reply) {
    let path = req.uri().path();
    match path {
        "/healthz" => return ("healthz", text(StatusCode::OK, "text/plain", "ok\n")),
        "/readyz" if view.caches.synced() => return ("readyz", text(StatusCode::OK, "text/plain", "ok\n")),
        "/readyz" => {
            return ("readyz", text(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "watch caches not synced yet\n"));
        }
        "/metrics" => return ("metrics", metrics(view, req).await),
        _ => {}
    }
    if endpoints == Endpoints::ProbesAndMetrics || !path.starts_with("/api/") {
        return (
            "other",
            error(StatusCode::NOT_FOUND, "NotFound", format!("no such endpoint {path:?}; see /api/v1/products")),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ("other", error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "the view is read-only: use GET"));
    }
    // An empty answer before the first full list would read as "no products" and empty a catalog.
    if !view.caches.synced() {
        return (
            "unavailable",
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "the bridge's watch caches are still syncing; retry shortly",
            ),
        );
    }
    let user = match authenticate(view, req).await {
        Ok(user) => user,
        Err(reply) => return ("unauthenticated", *reply),
    };
    let segments: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').collect();
    let access = |verb, resource, namespace, name| Access { verb, resource, namespace, name };
    let (label, needed, query_keys): (&'static str, Access, &[&str]) = match segments.as_slice() {
        ["products"] => ("products", access("list", "apiproducts", None, None), &["namespace", "all"]),
        ["products", ns, name] if valid_name(ns) && valid_name(name) => {
            ("product", access("get", "apiproducts", Some(*ns), Some(*name)), &[])
        }
        ["products", ns, name, "openapi"] if valid_name(ns) && valid_name(name) => {
            ("openapi", access("get", "apiproducts", Some(*ns), Some(*name)), &[])
        }
        ["keys"] => ("keys", access("list", "apikeys", None, None), &["namespace", "product", "phase"]),
        _ => {
            return (
                "other",
                error(StatusCode::NOT_FOUND, "NotFound", format!("no such endpoint {path:?}; see /api/v1/products")),
            );
        }
    };
    let query = match Query::parse(req, query_keys) {
        Ok(q) => q,
        Err(message) => return (label, error(StatusCode::BAD_REQUEST, "BadRequest", message)),
    };
    let namespace = match query.namespace() {
        Ok(ns) => ns,
        Err(message) => return (label, error(StatusCode::BAD_REQUEST, "BadRequest", message)),
    };
    let needed = Access { namespace: needed.namespace.or(namespace), ..needed };
    match view.auth.authorize(&user, &needed).await {
        Ok(true) => {}
        Ok(false) => {
            let scope =
                needed.namespace.map(|ns| format!("in namespace {ns:?}")).unwrap_or_else(|| "cluster-wide".into());
            let who = user.username.clone().unwrap_or_default();
            let message = format!(
                "user {who:?} may not {} {} {scope}; that needs the same RBAC rights as with kubectl",
                needed.verb, needed.resource
            );
            return (label, error(StatusCode::FORBIDDEN, "Forbidden", message));
        }
        Err(AuthError::Unavailable(m) | AuthError::Unauthenticated(m)) => {
            return (label, error(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", m));
        }
    }
    let reply = match (label, segments.as_slice()) {
        ("products", _) => list_products(view, req, &query, namespace),
        ("product", [_, ns, name]) => match view.caches.product(ns, name) {
            Some(p) => json(req, &ProductView::new(&p)),
            None => error(StatusCode::NOT_FOUND, "NotFound", format!("product {ns}/{name} not found")),
        },
        ("openapi", [_, ns, name, _]) => {
            match view.caches.product(ns, name).and_then(|p| p.status.clone()).and_then(|s| s.openapi) {
                Some(openapi) => cacheable(req, "text/plain; charset=utf-8", openapi.raw.into_bytes()),
                None => {
                    error(StatusCode::NOT_FOUND, "NotFound", format!("product {ns}/{name} has no OpenAPI document"))
                }
            }
        }
        _ => list_keys(view, req, &query, namespace),
    };
    (label, reply)
}

fn list_products(view: &View, req: &Request<Incoming>, query: &Query, namespace: Option<&str>) -> Reply {
    let include_drafts = match query.get("all") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return error(StatusCode::BAD_REQUEST, "BadRequest", format!("invalid all={other:?}: use true or false"));
        }
    };
    let mut products: Vec<_> = view
        .caches
        .products
        .state()
        .into_iter()
        .filter(|p| include_drafts || p.is_published())
        .filter(|p| namespace.is_none_or(|ns| p.namespace().as_deref() == Some(ns)))
        .collect();
    products.sort_by_key(|p| (p.namespace(), p.name_any()));
    let items: Vec<ProductView> = products.iter().map(|p| ProductView::new(p)).collect();
    json(req, &ProductList { items, scope: Scope { all_namespaces: true, namespaces: vec![] } })
}

fn list_keys(view: &View, req: &Request<Incoming>, query: &Query, namespace: Option<&str>) -> Reply {
    let product = match query.get("product").map(|p| p.split_once('/')) {
        None => None,
        Some(Some((ns, name))) if valid_name(ns) && valid_name(name) => Some((ns.to_owned(), name.to_owned())),
        Some(_) => return error(StatusCode::BAD_REQUEST, "BadRequest", "invalid product: use product=NAMESPACE/NAME"),
    };
    let phase = match query.get("phase") {
        None => None,
        Some(p @ ("Pending" | "Approved" | "Rejected" | "Expired")) => Some(p.to_owned()),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("invalid phase {other:?}: use Pending, Approved, Rejected or Expired"),
            );
        }
    };
    let mut keys: Vec<_> = view
        .caches
        .keys
        .state()
        .into_iter()
        .filter(|k| namespace.is_none_or(|ns| k.namespace().as_deref() == Some(ns)))
        .filter(|k| {
            product
                .as_ref()
                .is_none_or(|(ns, name)| &k.product_namespace() == ns && &k.spec.api_product_ref.name == name)
        })
        .filter(|k| phase.as_ref().is_none_or(|p| &k.phase().to_string() == p))
        .collect();
    keys.sort_by_key(|k| (k.namespace(), k.name_any()));
    json(
        req,
        &KeyList {
            items: keys.iter().map(|k| KeyView::new(k)).collect(),
            scope: Scope { all_namespaces: true, namespaces: vec![] },
        },
    )
}
