//! Notifications to the platform's webhook: one CloudEvent (structured mode, `application/cloudevents+json`) per
//! happening in a key's life, signed with HMAC-SHA256, delivered at least once, even across restarts of the
//! bridge. Never a key value.
//!
//! The key's status is the outbox: the reconcile that records what happened records its notification in
//! `status.outbox` in the same write; this worker delivers a key's entries, then removes them from its status
//! (a write conditioned on the version it read: if the key changed meanwhile, it is looked at again, and an
//! entry may be delivered twice, with the same CloudEvent `id`). After a restart, the new leader's pass over
//! every key offers the outboxes again. Keys wait per product and products are served in turn, so one tenant's
//! flood of notifications delays only that tenant's.
//!
//! The URL and the signing key come from a Secret (`--webhook-secret NAMESPACE/NAME`, keys `url` and
//! `signingKey`), read again every minute so both can be rotated without a restart.
//!
//! Signature: header `X-Apiportal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(signingKey, "<t>.<body>")>`;
//! receivers recompute it over the raw body and reject old timestamps.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use apiportal_core::{APIKey, resources::apikey::OutboxEntry};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::reflector::ObjectRef,
};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::{Mutex, Notify};

use crate::controller::Context;

/// Keys waiting per product; beyond this a product's keys wait for their next reconcile to be offered again.
const PER_PRODUCT: usize = 256;
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONFIG_REFRESH: Duration = Duration::from_secs(60);

pub const SIGNATURE_HEADER: &str = "x-apiportal-signature";

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

/// Keys whose outbox holds something, waiting per product; products served in turn.
#[derive(Default)]
pub struct FairQueue {
    by_product: BTreeMap<String, VecDeque<ObjectRef<APIKey>>>,
    queued: HashSet<ObjectRef<APIKey>>,
    /// The product served last (the next turn goes to the one after it).
    last: Option<String>,
}

impl FairQueue {
    /// Queues `key` of `product` unless it waits already; false when the product's share is full.
    pub fn offer(&mut self, product: &str, key: ObjectRef<APIKey>) -> bool {
        if self.queued.contains(&key) {
            return true;
        }
        let queue = self.by_product.entry(product.to_owned()).or_default();
        if queue.len() >= PER_PRODUCT {
            return false;
        }
        queue.push_back(key.clone());
        self.queued.insert(key);
        true
    }

    /// The next key, from the product after the one served last.
    pub fn take(&mut self) -> Option<ObjectRef<APIKey>> {
        let product = match &self.last {
            Some(last) => self
                .by_product
                .range::<String, _>((std::ops::Bound::Excluded(last.clone()), std::ops::Bound::Unbounded))
                .next()
                .or_else(|| self.by_product.iter().next())
                .map(|(p, _)| p.clone()),
            None => self.by_product.keys().next().cloned(),
        }?;
        let queue = self.by_product.get_mut(&product).expect("a product with a queue");
        let key = queue.pop_front().expect("queues are never left empty");
        if queue.is_empty() {
            self.by_product.remove(&product);
        }
        self.queued.remove(&key);
        self.last = Some(product);
        Some(key)
    }
}

/// The webhook: a queue a reconcile offers keys to without waiting, and the task that delivers.
#[derive(Clone)]
pub struct Webhook {
    queue: Arc<std::sync::Mutex<FairQueue>>,
    wake: Arc<Notify>,
    config: Arc<Config>,
    /// Ids delivered lately: a key read from a cache that has not seen its outbox cleared yet is not delivered
    /// again (a restart forgets them: at least once, rarely twice).
    delivered: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>,
}

/// How long a delivered id is remembered.
const REMEMBER_DELIVERED: Duration = Duration::from_secs(600);

impl Webhook {
    /// The webhook of the Secret `namespace/name`; its delivery task is `run`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        let config =
            Config { secrets: Api::namespaced(client, namespace), name: name.to_owned(), cached: Mutex::new(None) };
        Self {
            queue: Default::default(),
            wake: Default::default(),
            config: Arc::new(config),
            delivered: Default::default(),
        }
    }

    /// Offers `key` (whose outbox holds something) for delivery; never waits.
    pub fn offer(&self, ctx: &Context, key: &APIKey) {
        let offered = self.queue.lock().expect("not poisoned").offer(&key.product_id(), ObjectRef::from(key));
        if offered {
            self.wake.notify_one();
        } else {
            ctx.metrics.webhook_deferred.inc();
        }
    }

    /// Delivers what is offered, while this replica leads; until the process ends.
    pub async fn run(self, ctx: Arc<Context>) {
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
        loop {
            let next = self.queue.lock().expect("not poisoned").take();
            let Some(reference) = next else {
                self.wake.notified().await;
                continue;
            };
            if !ctx.is_leader() {
                continue;
            }
            let Some(key) = ctx.caches.keys.get(&reference) else { continue };
            if let Err(e) = self.deliver_outbox(&ctx, &client, &key).await {
                tracing::warn!(error = %e, apikey = %reference, "webhook delivery stopped; the key's next reconcile offers it again");
            }
        }
    }

    async fn deliver_outbox<C>(
        &self,
        ctx: &Context,
        client: &Client<C, Full<Bytes>>,
        key: &APIKey,
    ) -> Result<(), String>
    where
        C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
    {
        let outbox = key.status.as_ref().map(|s| s.outbox.clone()).unwrap_or_default();
        let mut delivered = 0;
        for entry in &outbox {
            let known = {
                let mut recent = self.delivered.lock().expect("not poisoned");
                recent.retain(|_, at| at.elapsed() < REMEMBER_DELIVERED);
                recent.contains_key(&entry.id)
            };
            if known {
                delivered += 1;
                continue;
            }
            let body = Bytes::from(cloud_event(key, entry));
            let mut backoff = FIRST_BACKOFF;
            let mut attempt = 1;
            loop {
                match deliver(client, &self.config, &body).await {
                    Ok(()) => {
                        ctx.metrics.webhook_delivered.inc();
                        self.delivered.lock().expect("not poisoned").insert(entry.id.clone(), Instant::now());
                        break;
                    }
                    Err(e) if attempt == ATTEMPTS => {
                        ctx.metrics.webhook_failed.inc();
                        self.clear(ctx, key, delivered).await?;
                        return Err(format!("{e} ({attempt} attempts)"));
                    }
                    Err(e) => {
                        ctx.metrics.webhook_retries.inc();
                        tracing::info!(error = %e, attempt, "webhook delivery failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        attempt += 1;
                    }
                }
            }
            delivered += 1;
        }
        self.clear(ctx, key, delivered).await
    }

    /// Removes the first `delivered` entries from the key's outbox: with a write conditioned on the version read,
    /// read again and retried when the key changed meanwhile (its other fields are the bridge's to keep).
    async fn clear(&self, ctx: &Context, key: &APIKey, delivered: usize) -> Result<(), String> {
        if delivered == 0 {
            return Ok(());
        }
        let done: HashSet<String> =
            key.status.iter().flat_map(|s| s.outbox[..delivered].iter().map(|e| e.id.clone())).collect();
        let api: Api<APIKey> = Api::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
        let mut current = key.clone();
        for _ in 0..5 {
            let remaining: Vec<OutboxEntry> = current
                .status
                .iter()
                .flat_map(|s| s.outbox.iter().filter(|e| !done.contains(&e.id)).cloned())
                .collect();
            let patch =
                json!({"metadata": {"resourceVersion": current.resource_version()}, "status": {"outbox": remaining}});
            match api.patch_status(&current.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => match api.get_opt(&current.name_any()).await {
                    Ok(Some(fresh)) => current = fresh,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(format!("cannot read the key again: {e}")),
                },
                Err(e) => return Err(format!("cannot clear the delivered notifications: {e}")),
            }
        }
        // Still changing: its reconcile offers it again (what was delivered may be delivered once more).
        Ok(())
    }
}

/// The CloudEvent for an outbox entry: metadata only, its `id` the entry's (stable across attempts).
pub fn cloud_event(key: &APIKey, entry: &OutboxEntry) -> Vec<u8> {
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    let event = json!({
        "specversion": "1.0",
        "id": entry.id,
        "source": format!("/apis/{}/namespaces/{ns}/apikeys/{name}", apiportal_core::API_VERSION),
        "type": entry.r#type,
        "subject": format!("{ns}/{name}"),
        "time": entry.at,
        "datacontenttype": "application/json",
        "data": {
            "apikey": {"namespace": ns, "name": name, "uid": key.uid()},
            "product": {"namespace": key.product_namespace(), "name": key.spec.api_product_ref.name},
            "planTier": key.plan_tier(),
            "application": key.spec.application,
            "requestedBy": key.requester(),
            "phase": key.phase(),
            "by": entry.by,
            "reason": entry.reason,
            "message": entry.message,
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
    format!("t={unix},v1={}", hex::encode(mac.finalize().into_bytes()))
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

    fn key(ns: &str) -> ObjectRef<APIKey> {
        ObjectRef::new("k").within(ns)
    }

    #[test]
    fn products_are_served_in_turn_so_one_tenants_flood_waits_behind_the_others() {
        let mut queue = FairQueue::default();
        for i in 0..10 {
            assert!(queue.offer("flood/p", key(&format!("flood-{i}"))));
        }
        assert!(queue.offer("quiet/p", key("quiet")));
        let first_two: Vec<String> = (0..2).map(|_| queue.take().unwrap().namespace.unwrap()).collect();
        assert!(
            first_two.contains(&"quiet".to_owned()),
            "the quiet product is served within the first turn: {first_two:?}"
        );
        assert!(queue.offer("flood/p", key("flood-5")), "a key already waiting is not queued twice");
        let rest = std::iter::from_fn(|| queue.take()).count();
        assert_eq!(rest, 9);
    }

    #[test]
    fn a_products_share_is_bounded() {
        let mut queue = FairQueue::default();
        for i in 0..PER_PRODUCT {
            assert!(queue.offer("flood/p", key(&format!("n{i}"))));
        }
        assert!(!queue.offer("flood/p", key("one-more")), "the flood's share is full");
        assert!(queue.offer("other/p", key("x")), "another product still gets in");
    }

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
