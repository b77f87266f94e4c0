//! Outgoing GETs on an owner's behalf (OpenAPI documents, OIDC discovery), which must never be turned inward:
//! an owner chooses the URL and could otherwise read the answers of the cloud metadata service, the kubelet or
//! anything in the cluster back from the product's status.
//!
//! - https only, unless the platform allows http (`--fetch-allow-http`);
//! - the host is resolved, every address is checked, and the connection goes to a checked address (a resolver
//!   that only ever returns permitted addresses, so nothing is resolved twice); IP literals are checked too;
//! - every special-purpose range of IANA's registries (`special`: loopback, link-local, private, shared, NAT64
//!   and other translations, documentation, multicast, reserved, ...) and any `--fetch-deny-cidr` (e.g. the
//!   cluster's service and pod ranges) are refused unless `--fetch-allow-cidr` allows them;
//! - no redirects are followed; bodies are bounded in size and time;
//! - failures are reported without what the remote side said, and refusals without the address a name resolved
//!   to (the bridge's log has the details).

pub mod special;

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{HttpConnector, dns::Name},
    },
    rt::TokioExecutor,
};
use ipnet::IpNet;
pub use special::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0:?} is not an absolute {1} URL")]
    InvalidUrl(String, &'static str),
    #[error("refused: {host} leads to {refusal}; the platform team may allow it with --fetch-allow-cidr")]
    Refused { host: String, refusal: Refusal },
    #[error("the document could not be fetched (the bridge's log says why)")]
    Failed(String),
    #[error("no answer within {0}s")]
    Timeout(u64),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
}

/// Where fetches may go.
#[derive(Clone, Debug, Default)]
pub struct FetchPolicy {
    pub allow_http: bool,
    /// Ranges allowed even though they are refused by default.
    pub allow: Vec<IpNet>,
    /// Ranges refused besides the defaults (the cluster's service and pod ranges when they are public).
    pub deny: Vec<IpNet>,
}

impl FetchPolicy {
    /// Why `ip` may not be fetched from, if it may not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let (ip, via) = special::reached(ip);
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        if self.deny.iter().any(|net| net.contains(&ip)) {
            return Err(Refusal::Denied);
        }
        match special::rule(ip) {
            Some(rule) => Err(Refusal::Special { rule, via }),
            None => Ok(()),
        }
    }
}

/// A resolver that returns only the addresses the policy permits, so the connector can only connect to those.
#[derive(Clone)]
struct CheckedResolver {
    policy: Arc<FetchPolicy>,
}

type Addrs = std::vec::IntoIter<SocketAddr>;

impl tower::Service<Name> for CheckedResolver {
    type Response = Addrs;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addrs, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let permitted: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refusal.get_or_insert(why);
                        false
                    }
                })
                .collect();
            match (permitted.is_empty(), refusal) {
                (true, Some(refusal)) => {
                    Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, RefusedAddress(refusal)))
                }
                (true, None) => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address")),
                (false, _) => Ok(permitted.into_iter()),
            }
        })
    }
}

/// Carries the refusal through hyper's connect error.
#[derive(Debug)]
struct RefusedAddress(Refusal);

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for RefusedAddress {}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<CheckedResolver>>;

#[derive(Clone)]
pub struct Fetcher {
    client: Client<Connector, Empty<Bytes>>,
    policy: Arc<FetchPolicy>,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(timeout: Duration, policy: FetchPolicy) -> Self {
        let policy = Arc::new(policy);
        let mut http = HttpConnector::new_with_resolver(CheckedResolver { policy: policy.clone() });
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        // Mozilla's roots compiled in: the static image carries no OS certificate store.
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots();
        let connector = if policy.allow_http { builder.https_or_http() } else { builder.https_only() }
            .enable_http1()
            .wrap_connector(http);
        Self { client: Client::builder(TokioExecutor::new()).build(connector), policy, timeout }
    }

    /// GETs `url`, failing if the body exceeds `max_bytes`.
    pub async fn get(&self, url: &str, max_bytes: usize) -> Result<Bytes, FetchError> {
        let schemes = if self.policy.allow_http { "http(s)" } else { "https" };
        let uri: hyper::Uri = url.parse().map_err(|_| FetchError::InvalidUrl(url.to_owned(), schemes))?;
        let scheme_ok = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => self.policy.allow_http,
            _ => false,
        };
        let host = uri.host().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned());
        let (true, Some(host)) = (scheme_ok, host) else {
            return Err(FetchError::InvalidUrl(url.to_owned(), schemes));
        };
        // IP literals never reach the resolver: check them here.
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.policy.check(ip).map_err(|refusal| FetchError::Refused { host: host.clone(), refusal })?;
        }
        let request = hyper::Request::get(uri)
            .header("accept", "application/json, application/yaml, text/yaml, */*")
            .header("user-agent", concat!("apiportal-bridge/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| FetchError::Failed(e.to_string()))?;
        let work = async {
            let response = self.client.request(request).await.map_err(|e| {
                let refused = std::error::Error::source(&e)
                    .and_then(find_refusal)
                    .map(|refusal| FetchError::Refused { host: host.clone(), refusal });
                refused.unwrap_or_else(|| FetchError::Failed(format!("{e:?}")))
            })?;
            if !response.status().is_success() {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let body = Limited::new(response.into_body(), max_bytes).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    FetchError::TooLarge(max_bytes)
                } else {
                    FetchError::Failed(e.to_string())
                }
            })?;
            Ok(body.to_bytes())
        };
        let result =
            tokio::time::timeout(self.timeout, work).await.map_err(|_| FetchError::Timeout(self.timeout.as_secs()))?;
        if let Err(FetchError::Failed(detail)) = &result {
            tracing::info!(url, error = %detail, "fetch failed");
        }
        result
    }
}

/// The policy's refusal somewhere in an error's chain of sources.
fn find_refusal(mut error: &(dyn std::error::Error + 'static)) -> Option<Refusal> {
    loop {
        if let Some(refused) = error.downcast_ref::<RefusedAddress>() {
            return Some(refused.0.clone());
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(refused) = io.get_ref().and_then(|inner| inner.downcast_ref::<RefusedAddress>())
        {
            return Some(refused.0.clone());
        }
        error = error.source()?;
    }
}

/// Whether `body` is an OpenAPI (3.x) or Swagger (2.0) document, in JSON or YAML: nothing else is kept.
pub fn is_openapi(body: &str) -> bool {
    let document: Option<serde_json::Value> =
        serde_json::from_str(body).ok().or_else(|| serde_saphyr::from_str::<serde_json::Value>(body).ok());
    let Some(serde_json::Value::Object(fields)) = document else { return false };
    let version = |key: &str| {
        fields.get(key).and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_f64().map(|f| f.to_string())))
    };
    version("openapi").is_some_and(|v| v.starts_with("3."))
        || version("swagger").is_some_and(|v| v == "2.0" || v == "2")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &FetchPolicy, ip: &str) -> bool {
        policy.check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn the_platform_allows_and_denies_ranges_explicitly() {
        let p = FetchPolicy {
            allow: vec!["127.0.0.1/32".parse().unwrap()],
            deny: vec!["34.118.224.0/20".parse().unwrap()],
            ..Default::default()
        };
        assert!(!refused(&p, "127.0.0.1"), "allowed by flag");
        assert!(!refused(&p, "::ffff:127.0.0.1"), "the same address written as IPv6");
        assert!(refused(&p, "127.0.0.2"), "only what the flag names");
        assert!(refused(&p, "::127.0.0.1"), "an IPv4-compatible address is not the IPv4 address");
        assert_eq!(p.check("34.118.230.1".parse().unwrap()), Err(Refusal::Denied), "a public range denied by flag");
        assert_eq!(p.check("64:ff9b::2276:e601".parse().unwrap()), Err(Refusal::Denied), "also through NAT64");
        assert!(!refused(&FetchPolicy::default(), "34.118.230.1"));
    }

    #[test]
    fn only_openapi_and_swagger_documents_are_kept() {
        assert!(is_openapi(r#"{"openapi": "3.0.3", "info": {}}"#));
        assert!(is_openapi("openapi: 3.1.0\ninfo: {title: x}\n"));
        assert!(is_openapi("swagger: '2.0'\n"));
        assert!(!is_openapi(r#"{"ami-id": "ami-123", "instance-id": "i-abc"}"#), "a metadata answer is not a document");
        assert!(!is_openapi("root:x:0:0:root:/root:/bin/bash\n"));
        assert!(!is_openapi("<html>"));
    }

    #[tokio::test]
    async fn urls_are_checked_before_anything_is_sent() {
        let fetcher = Fetcher::new(Duration::from_secs(1), FetchPolicy::default());
        assert!(
            matches!(fetcher.get("http://example.com/x", 10).await, Err(FetchError::InvalidUrl(..))),
            "http refused by default"
        );
        assert!(matches!(
            fetcher.get("https://169.254.169.254/latest/meta-data/", 10).await,
            Err(FetchError::Refused { .. })
        ));
        assert!(matches!(fetcher.get("https://[::1]:6443/", 10).await, Err(FetchError::Refused { .. })));
        assert!(matches!(fetcher.get("https://[::127.0.0.1]:6443/", 10).await, Err(FetchError::Refused { .. })));
        // A name that resolves inward is refused at resolution: nothing connects to it, and the refusal says
        // which rule refused it, not what the name resolved to.
        let by_name = fetcher.get("https://localhost:1/", 10).await;
        assert!(matches!(by_name, Err(FetchError::Refused { .. })), "{by_name:?}");
        let message = by_name.unwrap_err().to_string();
        assert!(message.contains("loopback address") && message.contains("localhost"), "{message}");
        assert!(!message.contains("127.0.0.1") && !message.contains("::1,"), "{message}");
    }
}
