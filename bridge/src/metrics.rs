//! Prometheus metrics: HTTP requests, reconciles and their failures, leadership, and the queue of requests
//! waiting for a decision.

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: &'static str,
    pub error: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub reconciles: Family<ControllerLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub leader: Gauge,
    pub keys_pending: Gauge,
    pub products: Gauge,
    pub keys_issued: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("apiportal_bridge");
        let metrics = Self {
            http_requests: Family::default(),
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            leader: Gauge::default(),
            keys_pending: Gauge::default(),
            products: Gauge::default(),
            keys_issued: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests served by the view", metrics.http_requests.clone());
        registry.register("reconciles", "Reconciles run", metrics.reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed, by error", metrics.reconcile_errors.clone());
        registry.register("leader", "1 while this replica holds the Lease and reconciles", metrics.leader.clone());
        registry.register(
            "apikeys_pending",
            "APIKeys waiting for a decision (the review queue)",
            metrics.keys_pending.clone(),
        );
        registry.register("apiproducts", "APIProducts in the watch cache", metrics.products.clone());
        registry.register("keys_issued", "API keys generated", metrics.keys_issued.clone());
        Self { registry, ..metrics }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
