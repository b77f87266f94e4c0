//! Key reconcile, as observe → plan → act: `observe` reads the synced caches (and confirms a missing product
//! with a live read), `plan` decides (a pure function, unit-tested case by case), `act` carries the plan out.
//! A decision the bridge makes is written together with everything it implies (an automatic approval with the
//! key's first value) in one status write.

pub mod act;
pub mod observe;
pub mod plan;
pub mod projection;

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
        ctx.metrics.defer_reconcile("apikey");
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if ctx.own_writes.is_superseded(key.as_ref()) {
        // The cache lags behind the bridge's own writes; the watch event of the newer version triggers again.
        // The requeue is only a safety net should that event be lost.
        return Ok(Action::requeue(Duration::from_secs(30)));
    }
    let _timer = ctx.metrics.reconcile_timer("apikey");
    let mut key = (*key).clone();
    let product = observe::product(&ctx, &key).await?;
    let observed = plan::Observed {
        key: &key,
        product: observe::product_state(product.as_deref()),
        copies: observe::copies(&ctx, &key),
        keys_ahead: observe::keys_ahead(&ctx, &key, product.as_deref()),
        just_created: observe::just_created(&ctx, &key),
        now: Timestamp::now(),
        settings: &ctx.settings,
    };
    let plan = plan::plan(&observed);
    let issues_first_value = plan.actions.iter().any(|a| matches!(a, plan::Action::Issue { .. }))
        && key.status.as_ref().is_none_or(|s| s.issued.is_none());
    if !issues_first_value {
        ctx.slots.release(&key);
    }
    match act::execute(&ctx, &mut key, &plan).await {
        Ok(act::Executed::Superseded) => Ok(Action::requeue(Duration::from_millis(500))),
        Ok(act::Executed::Done) => Ok(plan.requeue_after.map(Action::requeue).unwrap_or_else(Action::await_change)),
        Err(e) => {
            ctx.slots.release(&key);
            Err(e)
        }
    }
}
