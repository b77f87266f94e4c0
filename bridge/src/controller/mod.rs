//! The controllers: run on every replica so their subscriptions to the shared caches are always drained, but
//! reconcile only while this replica holds the Lease.

pub mod apikey;
pub mod conditions;
pub mod product;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use kube::{Client, runtime::events::Recorder};

use crate::{caches::Caches, fetch::Fetcher, metrics::Metrics};

/// What reconcilers share.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub caches: Caches,
    pub metrics: Arc<Metrics>,
    pub fetcher: Fetcher,
    pub leader: Arc<AtomicBool>,
    pub enforcement_namespace: String,
    pub openapi_max_bytes: usize,
}

impl Context {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }
}

/// True when the condition of that type currently has that reason.
pub fn conditions_has_reason(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
    reason: &str,
) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.reason == reason)
}
