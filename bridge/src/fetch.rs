//! Outgoing HTTP(S) GETs (OpenAPI documents, OIDC discovery): bounded in time and size, never following the
//! caller into unbounded memory.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out after {0}s")]
    Timeout(u64),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("larger than {0} bytes")]
    TooLarge(usize),
}

#[derive(Clone)]
pub struct Fetcher {
    client: Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Self {
        // Mozilla's roots compiled in: the static image carries no OS certificate store.
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        Self { client: Client::builder(TokioExecutor::new()).build(connector), timeout }
    }

    /// GETs `url`, failing if the body exceeds `max_bytes`.
    pub async fn get(&self, url: &str, max_bytes: usize) -> Result<Bytes, FetchError> {
        let uri: hyper::Uri = url.parse().map_err(|_| FetchError::InvalidUrl(url.to_owned()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(FetchError::InvalidUrl(url.to_owned()));
        }
        let request = hyper::Request::get(uri)
            .header("accept", "application/json, application/yaml, text/yaml, */*")
            .header("user-agent", concat!("apiportal-bridge/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let work = async {
            let response = self.client.request(request).await.map_err(|e| FetchError::Request(e.to_string()))?;
            if !response.status().is_success() {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let body = Limited::new(response.into_body(), max_bytes).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    FetchError::TooLarge(max_bytes)
                } else {
                    FetchError::Request(e.to_string())
                }
            })?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(self.timeout, work).await.map_err(|_| FetchError::Timeout(self.timeout.as_secs()))?
    }
}
