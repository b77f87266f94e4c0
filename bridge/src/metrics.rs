//! Prometheus metrics: HTTP requests and their durations, reconciles (runs, failures, durations, those put off
//! until the caches sync), leadership, the review queue, keys expiring soon, webhook deliveries, and the
//! bridge's own health (background tasks that stopped, panics).

use std::time::Instant;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub error: &'static str,
}

fn seconds_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_seconds: Family<RouteLabels, Histogram>,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_seconds: Family<ControllerLabels, Histogram>,
    pub reconciles_deferred: Family<ControllerLabels, Counter>,
    pub task_failures: Family<TaskLabels, Counter>,
    pub leader: Gauge,
    pub keys_pending: Gauge,
    pub keys_expiring_soon: Gauge,
    pub products: Gauge,
    pub keys_issued: Counter,
    pub enforcement_swept: Counter,
    pub token_reviews: Counter,
    pub rate_limited: Counter,
    pub webhook_delivered: Counter,
    pub webhook_retries: Counter,
    pub webhook_failed: Counter,
    pub webhook_dropped: Counter,
    pub webhook_deferred: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("apiportal_bridge");
        let metrics = Self {
            http_requests: Family::default(),
            http_request_seconds: Family::new_with_constructor(seconds_histogram),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_seconds: Family::new_with_constructor(seconds_histogram),
            reconciles_deferred: Family::default(),
            task_failures: Family::default(),
            leader: Gauge::default(),
            keys_pending: Gauge::default(),
            keys_expiring_soon: Gauge::default(),
            products: Gauge::default(),
            keys_issued: Counter::default(),
            enforcement_swept: Counter::default(),
            token_reviews: Counter::default(),
            rate_limited: Counter::default(),
            webhook_delivered: Counter::default(),
            webhook_retries: Counter::default(),
            webhook_failed: Counter::default(),
            webhook_dropped: Counter::default(),
            webhook_deferred: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests served by the view", metrics.http_requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            metrics.http_request_seconds.clone(),
        );
        registry.register("reconciles", "Reconciles run", metrics.reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed, by error", metrics.reconcile_errors.clone());
        registry.register("reconcile_duration_seconds", "Time a reconcile took", metrics.reconcile_seconds.clone());
        registry.register(
            "reconciles_deferred",
            "Reconciles put off because a watch cache has not listed everything yet (nothing is decided from it)",
            metrics.reconciles_deferred.clone(),
        );
        registry.register(
            "task_failures",
            "Background tasks that stopped while the bridge ran (the bridge is then unready and unhealthy)",
            metrics.task_failures.clone(),
        );
        registry.register("panics", "Panics in the bridge process", crate::supervise::PANICS.clone());
        registry.register("leader", "1 while this replica holds the Lease and reconciles", metrics.leader.clone());
        registry.register(
            "apikeys_pending",
            "APIKeys waiting for a decision (the review queue)",
            metrics.keys_pending.clone(),
        );
        registry.register(
            "apikeys_expiring_soon",
            "Approved APIKeys that expire within the warning window (--expiry-warning)",
            metrics.keys_expiring_soon.clone(),
        );
        registry.register("apiproducts", "APIProducts in the watch cache", metrics.products.clone());
        registry.register("keys_issued", "API key values generated", metrics.keys_issued.clone());
        registry.register(
            "enforcement_swept",
            "Enforcement Secrets removed because no valid key wanted them",
            metrics.enforcement_swept.clone(),
        );
        registry.register(
            "token_reviews",
            "TokenReviews sent to the API server for callers of the view",
            metrics.token_reviews.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429 (too many unknown tokens from one client)",
            metrics.rate_limited.clone(),
        );
        registry.register("webhook_delivered", "Webhook events delivered", metrics.webhook_delivered.clone());
        registry.register("webhook_retries", "Webhook deliveries retried", metrics.webhook_retries.clone());
        registry.register(
            "webhook_failed",
            "Webhook events given up on after every retry",
            metrics.webhook_failed.clone(),
        );
        registry.register(
            "webhook_dropped",
            "Webhook notifications dropped: a key's outbox overflowed, or a deleted key could not wait any longer",
            metrics.webhook_dropped.clone(),
        );
        registry.register(
            "webhook_deferred",
            "Keys not queued for the webhook now because their product's share of the queue was full (offered again later)",
            metrics.webhook_deferred.clone(),
        );
        Self { registry, ..metrics }
    }
}

/// Records a reconcile's duration when dropped.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: &'static str,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        let labels = ControllerLabels { controller: self.controller };
        self.metrics.reconcile_seconds.get_or_create(&labels).observe(self.start.elapsed().as_secs_f64());
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// Counts a reconcile put off until the caches have synced.
    pub fn defer_reconcile(&self, controller: &'static str) {
        self.reconciles_deferred.get_or_create(&ControllerLabels { controller }).inc();
    }

    /// Counts a reconcile and times it until the returned guard is dropped.
    pub fn reconcile_timer(&self, controller: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.get_or_create(&ControllerLabels { controller }).inc();
        ReconcileTimer { metrics: self, controller, start: Instant::now() }
    }
}

/// Every 10 seconds, the gauges read off the caches: products, the review queue, keys expiring within `warning`.
pub async fn sample_caches(
    caches: crate::caches::Caches,
    metrics: std::sync::Arc<Metrics>,
    warning: std::time::Duration,
) {
    use apiportal_core::KeyPhase;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        let horizon =
            jiff::Timestamp::now() + jiff::SignedDuration::try_from(warning).unwrap_or(jiff::SignedDuration::MAX);
        let keys = caches.keys.state();
        metrics.products.set(caches.products.state().len() as i64);
        metrics.keys_pending.set(keys.iter().filter(|k| k.phase() == KeyPhase::Pending).count() as i64);
        let expiring = keys
            .iter()
            .filter(|k| k.phase() == KeyPhase::Approved && k.spec.expires_at.as_ref().is_some_and(|t| t.0 <= horizon))
            .count();
        metrics.keys_expiring_soon.set(expiring as i64);
    }
}
