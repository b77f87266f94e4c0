//! Key reconcile, as observe → plan → act: `observe` reads the synced caches (and confirms a missing product
//! with a live read), `plan` decides (a pure function, unit-tested case by case), `act` carries the plan out.
//! A plan that ends in a decision is made again right after the decision is written, so an automatic approval
//! is issued within one reconcile.

pub mod act;
pub mod observe;
pub mod plan;
#[cfg(test)]
mod plan_tests;

use std::{sync::Arc, time::Duration};

use apiportal_core::{APIKey, APIProduct};
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use kube::runtime::{
    Controller,
    controller::Action,
    reflector::{ObjectRef, ReflectHandle},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::Context;
use crate::{Error, Result, caches::keys_of};

/// Decisions in one reconcile (each is followed by a fresh plan).
const MAX_ROUNDS: usize = 4;

pub fn controller(
    ctx: Arc<Context>,
    keys_sub: ReflectHandle<APIKey>,
    products_sub: ReflectHandle<APIProduct>,
    triggers: mpsc::UnboundedReceiver<ObjectRef<APIKey>>,
    become_leader: impl Stream<Item = ()> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> {
    let keys = ctx.caches.keys.clone();
    let by_product = keys.clone();
    Controller::for_shared_stream(keys_sub, keys)
        .with_config(ctx.controller_config())
        .watches_shared_stream(products_sub, move |product: Arc<APIProduct>| {
            use kube::ResourceExt;
            keys_of(&by_product, &product.namespace().unwrap_or_default(), &product.name_any())
        })
        .reconcile_on(UnboundedReceiverStream::new(triggers))
        .reconcile_all_on(become_leader)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
}

fn error_policy(key: Arc<APIKey>, error: &Error, ctx: Arc<Context>) -> Action {
    super::record_failure(&ctx, "apikey", key.as_ref(), error);
    Action::requeue(Duration::from_secs(5))
}

#[tracing::instrument(skip_all, fields(apikey = %kube::ResourceExt::name_any(key.as_ref()), namespace = kube::ResourceExt::namespace(key.as_ref()).unwrap_or_default()))]
async fn reconcile(key: Arc<APIKey>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    if !ctx.caches.synced() {
        // Nothing is decided from a cache that has not listed everything once.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if ctx.own_writes.is_superseded(key.as_ref()) {
        // The cache lags behind the bridge's own writes; the watch event of the newer version triggers again.
        // The requeue is only a safety net should that event be lost.
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    let _timer = ctx.metrics.reconcile_timer("apikey");
    let mut key = (*key).clone();
    for _ in 0..MAX_ROUNDS {
        let product = observe::product(&ctx, &key).await?;
        let observed = plan::Observed {
            key: &key,
            product: observe::product_state(product.as_deref()),
            copies: observe::copies(&ctx, &key),
            earlier_keys_of_requester: observe::earlier_keys_of_requester(&ctx, &key, product.as_deref()),
            // Whole seconds, as every time the bridge writes is once stored.
            now: Timestamp::from_second(Timestamp::now().as_second()).expect("now is a valid time"),
            settings: &ctx.settings,
        };
        let plan = plan::plan(&observed);
        match act::execute(&ctx, &mut key, &plan).await? {
            act::Executed::Superseded => return Ok(Action::requeue(Duration::from_millis(500))),
            act::Executed::Done if plan.decides() => continue,
            act::Executed::Done => {
                return Ok(plan.requeue_after.map(Action::requeue).unwrap_or_else(Action::await_change));
            }
        }
    }
    Ok(Action::requeue(Duration::from_secs(1)))
}
