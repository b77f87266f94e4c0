//! The controllers: run on every replica so their subscriptions to the shared caches are always drained, but
//! reconcile only while this replica holds the Lease, and only once every cache has synced.

pub mod apikey;
pub mod conditions;
pub mod lifetimes;
pub mod limits;
pub mod own_writes;
pub mod product;
pub mod sweeper;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use kube::Client;

use crate::{caches::Caches, fetch::Fetcher, metrics::Metrics, notify::Notifier};

/// What reconcilers share.
pub struct Context {
    pub client: Client,
    pub caches: Caches,
    pub metrics: Arc<Metrics>,
    pub fetcher: Fetcher,
    pub notifier: Notifier,
    pub lifetimes: lifetimes::KeyLifetimes,
    pub leader: Arc<AtomicBool>,
    pub settings: apikey::plan::Settings,
    pub openapi_max_bytes: usize,
    pub max_concurrent_reconciles: u16,
    /// Key versions the bridge wrote past: a reconcile of one waits for the newer version instead.
    pub own_writes: own_writes::OwnWrites,
    /// Enforcement copies the bridge created moments ago (the Secrets' cache may lag behind).
    pub created_copies: own_writes::CreatedCopies,
    /// Places held under `maxKeysPerUser` by keys being issued their first value.
    pub slots: limits::IssuanceSlots,
}

impl Context {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Controller settings both controllers share.
    pub fn controller_config(&self) -> kube::runtime::controller::Config {
        kube::runtime::controller::Config::default().concurrency(self.max_concurrent_reconciles)
    }
}

/// Logs a failed reconcile and counts it by error, for either controller's `error_policy`.
pub fn record_failure<K: kube::ResourceExt>(ctx: &Context, controller: &'static str, object: &K, error: &crate::Error) {
    tracing::warn!(controller, name = %object.name_any(), namespace = object.namespace().unwrap_or_default(), %error, "reconcile failed");
    ctx.metrics
        .reconcile_errors
        .get_or_create(&crate::metrics::ErrorLabels { controller, error: error.metric_label() })
        .inc();
}
