//! Notifications to the platform's webhook: one CloudEvent (structured mode, `application/cloudevents+json`) per
//! happening in a key's life, signed with HMAC-SHA256, delivered in the background with retries and backoff from
//! a bounded queue. Sending never waits: a reconcile hands the event over and goes on; when the queue is full the
//! event is dropped and counted. Never a key value.
//!
//! The URL and the signing key come from a Secret (`--webhook-secret NAMESPACE/NAME`, keys `url` and
//! `signingKey`), read again every minute so both can be rotated without a restart.
//!
//! Signature: header `X-Apiportal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(signingKey, "<t>.<body>")>`;
//! receivers recompute it over the raw body and reject old timestamps.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use apiportal_core::APIKey;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use rand::RngExt;
use serde_json::json;
use sha2::Sha256;
use tokio::sync::{Mutex, mpsc};

use crate::{controller::apikey::plan::Notice, metrics::Metrics};

/// Events waiting for delivery; beyond this they are dropped (and counted).
const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONFIG_REFRESH: Duration = Duration::from_secs(60);

pub const SIGNATURE_HEADER: &str = "x-apiportal-signature";

/// The queue side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Webhook {
    queue: mpsc::Sender<Bytes>,
    metrics: Arc<Metrics>,
}

struct Target {
    url: hyper::Uri,
    signing_key: Vec<u8>,
}

struct Config {
    secrets: Api<Secret>,
    name: String,
    cached: Mutex<Option<(Instant, Arc<Target>)>>,
}

impl Config {
    async fn target(&self) -> Result<Arc<Target>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((at, target)) = cached.as_ref()
            && at.elapsed() < CONFIG_REFRESH
        {
            return Ok(target.clone());
        }
        let secret = self.secrets.get(&self.name).await.map_err(|e| format!("cannot read the webhook Secret: {e}"))?;
        let field =
            |k: &str| secret.data.as_ref().and_then(|d| d.get(k)).map(|v| v.0.clone()).filter(|v| !v.is_empty());
        let url = field("url").ok_or("the webhook Secret has no `url`")?;
        let url: hyper::Uri =
            String::from_utf8_lossy(&url).trim().parse().map_err(|_| "the webhook Secret's `url` is not a URL")?;
        let signing_key = field("signingKey").ok_or("the webhook Secret has no `signingKey`")?;
        let target = Arc::new(Target { url, signing_key });
        *cached = Some((Instant::now(), target.clone()));
        Ok(target)
    }
}

impl Webhook {
    /// Starts the delivery task for the Secret `namespace/name`.
    pub fn start(client: kube::Client, namespace: &str, name: &str, metrics: Arc<Metrics>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let config =
            Config { secrets: Api::namespaced(client, namespace), name: name.to_owned(), cached: Mutex::new(None) };
        tokio::spawn(deliver_all(rx, config, metrics.clone()));
        Self { queue, metrics }
    }

    /// Queues the CloudEvent for `notice`; never waits.
    pub fn send(&self, key: &APIKey, notice: &Notice) {
        let Some(type_) = notice.kind.cloud_event_type() else { return };
        let body = cloud_event(key, notice, type_, Timestamp::now());
        if self.queue.try_send(Bytes::from(body)).is_err() {
            self.metrics.webhook_dropped.inc();
            tracing::warn!(r#type = type_, "webhook queue full: event dropped");
        }
    }
}

/// The CloudEvent for a notice about a key: metadata only.
pub fn cloud_event(key: &APIKey, notice: &Notice, type_: &str, time: Timestamp) -> Vec<u8> {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    let id: String = (0..16).map(|_| format!("{:02x}", rand::rng().random::<u8>())).collect();
    let event = json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("/apis/{}/namespaces/{ns}/apikeys/{name}", apiportal_core::API_VERSION),
        "type": type_,
        "subject": format!("{ns}/{name}"),
        "time": time,
        "datacontenttype": "application/json",
        "data": {
            "apikey": {"namespace": ns, "name": name, "uid": key.uid()},
            "product": {"namespace": key.product_namespace(), "name": key.spec.api_product_ref.name},
            "planTier": key.spec.plan_tier,
            "requestedBy": key.requester(),
            "phase": key.phase(),
            "by": notice.by,
            "reason": notice.reason,
            "message": notice.note,
            "expiresAt": key.spec.expires_at,
        },
    });
    serde_json::to_vec(&event).expect("JSON")
}

/// `t=<unix>,v1=<hex>` for `body` sent at `unix`.
pub fn signature(signing_key: &[u8], unix: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key).expect("HMAC takes a key of any size");
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={unix},v1={hex}")
}

async fn deliver_all(mut rx: mpsc::Receiver<Bytes>, config: Config, metrics: Arc<Metrics>) {
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    while let Some(body) = rx.recv().await {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            match deliver(&client, &config, &body).await {
                Ok(()) => {
                    metrics.webhook_delivered.inc();
                    break;
                }
                Err(e) if attempt == ATTEMPTS => {
                    metrics.webhook_failed.inc();
                    tracing::warn!(error = %e, attempts = attempt, "webhook delivery failed: event dropped");
                }
                Err(e) => {
                    metrics.webhook_retries.inc();
                    tracing::info!(error = %e, attempt, "webhook delivery failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

async fn deliver<C>(client: &Client<C, Full<Bytes>>, config: &Config, body: &Bytes) -> Result<(), String>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let target = config.target().await?;
    let unix = Timestamp::now().as_second();
    let request = hyper::Request::post(target.url.clone())
        .header("content-type", "application/cloudevents+json")
        .header("user-agent", concat!("apiportal-bridge/", env!("CARGO_PKG_VERSION")))
        .header(SIGNATURE_HEADER, signature(&target.signing_key, unix, body))
        .body(Full::new(body.clone()))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))?
        .map_err(|e| format!("request failed: {e}"))?;
    if response.status().is_success() { Ok(()) } else { Err(format!("answered HTTP {}", response.status().as_u16())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_time_and_the_body() {
        let a = signature(b"secret", 1_700_000_000, b"{}");
        assert!(a.starts_with("t=1700000000,v1="), "{a}");
        assert_eq!(a.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(a, signature(b"secret", 1_700_000_001, b"{}"));
        assert_ne!(a, signature(b"secret", 1_700_000_000, b"{ }"));
        assert_ne!(a, signature(b"other", 1_700_000_000, b"{}"));
    }
}
