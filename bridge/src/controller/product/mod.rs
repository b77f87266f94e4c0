//! Product reconcile, as observe → plan → act: read the route and the policies from the synced caches, ask
//! `plan` what to fetch (the OIDC token endpoint, the OpenAPI document), fetch it, let `plan` decide the status
//! (the route's acceptance, the PlanPolicy and AuthPolicy that apply, whether keys may be issued, the
//! documents), and write it with server-side apply when it changed. Missing pieces are conditions with reasons,
//! never errors.

use std::{sync::Arc, time::Duration};

use apiportal_core::{
    APIProduct, APIProductStatus,
    labels::BRIDGE_FIELD_MANAGER,
    resources::{authpolicy::AuthPolicy, httproute::HTTPRoute, planpolicy::PlanPolicy},
};
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::Action,
        reflector::{ObjectRef, ReflectHandle},
    },
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::Context;
use crate::{
    Error, Result,
    caches::{products_on_route, products_targeted},
};

pub mod plan;

use self::plan::RESYNC;

/// The largest OIDC discovery document read.
const OIDC_DOCUMENT_MAX_BYTES: usize = 256 * 1024;

/// What the product controller reconciles on: its subscriptions to the shared caches, and the products whose route
/// or policies were deleted.
pub struct Inputs {
    pub products: ReflectHandle<APIProduct>,
    pub routes: ReflectHandle<HTTPRoute>,
    pub auth_policies: ReflectHandle<AuthPolicy>,
    pub plan_policies: ReflectHandle<PlanPolicy>,
    pub triggers: mpsc::UnboundedReceiver<ObjectRef<APIProduct>>,
}

/// Builds the product controller over the shared caches; `become_leader` triggers a full pass.
pub fn controller(
    ctx: Arc<Context>,
    inputs: Inputs,
    become_leader: impl Stream<Item = ()> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> {
    let products = ctx.caches.products.clone();
    let (by_route, by_auth, by_plan) = (products.clone(), products.clone(), products.clone());
    let (routes_for_auth, routes_for_plan) = (ctx.caches.routes.clone(), ctx.caches.routes.clone());
    let Inputs {
        products: products_sub,
        routes: routes_sub,
        auth_policies: auth_sub,
        plan_policies: plan_sub,
        triggers,
    } = inputs;
    Controller::for_shared_stream(products_sub, products)
        .with_config(ctx.controller_config())
        .watches_shared_stream(routes_sub, move |route: Arc<HTTPRoute>| {
            products_on_route(&by_route, &route.namespace().unwrap_or_default(), &route.name_any())
        })
        .watches_shared_stream(auth_sub, move |p: Arc<AuthPolicy>| {
            products_targeted(&by_auth, &routes_for_auth, &p.namespace().unwrap_or_default(), &p.spec.target_ref)
        })
        .watches_shared_stream(plan_sub, move |p: Arc<PlanPolicy>| {
            products_targeted(&by_plan, &routes_for_plan, &p.namespace().unwrap_or_default(), &p.spec.target_ref)
        })
        // Deletions of routes and policies, which the shared streams do not carry (see `caches`).
        .reconcile_on(UnboundedReceiverStream::new(triggers))
        .reconcile_all_on(become_leader)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
}

fn error_policy(product: Arc<APIProduct>, error: &Error, ctx: Arc<Context>) -> Action {
    super::record_failure(&ctx, "apiproduct", product.as_ref(), error);
    Action::requeue(Duration::from_secs(10))
}

#[tracing::instrument(skip_all, fields(product = %product.name_any(), namespace = product.namespace().unwrap_or_default()))]
async fn reconcile(product: Arc<APIProduct>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    if !ctx.caches.synced() {
        // A route or policy missing from an unsynced cache would wipe the product's plans and auth scheme.
        ctx.metrics.defer_reconcile("apiproduct");
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let _timer = ctx.metrics.reconcile_timer("apiproduct");
    let ns = product.namespace().ok_or_else(|| Error::MissingNamespace(product.name_any()))?;
    ctx.lifetimes.ensure(&product).await?;
    let (auth_policies, plan_policies) = (ctx.caches.auth_policies.state(), ctx.caches.plan_policies.state());
    let route = ctx.caches.route(&ns, &product.spec.target_ref.name);
    let observed = plan::Observed {
        product: &product,
        route: route.as_deref(),
        auth_policies: &auth_policies,
        plan_policies: &plan_policies,
        now: Timestamp::now(),
        openapi_max_bytes: ctx.openapi_max_bytes,
    };
    let wanted = plan::fetches(&observed);
    let fetched = plan::Fetched {
        oidc: match &wanted.oidc {
            Some(url) => Some(ctx.fetcher.get(url, OIDC_DOCUMENT_MAX_BYTES).await),
            None => None,
        },
        openapi: match &wanted.openapi {
            Some(url) => Some(ctx.fetcher.get(url, ctx.openapi_max_bytes).await),
            None => None,
        },
    };
    let status = plan::plan(&observed, fetched);
    Ok(match write_status(&ctx, &product, &ns, status).await? {
        Written::Done => Action::requeue(RESYNC),
        Written::NotYet => Action::requeue(Duration::from_secs(1)),
    })
}

/// How writing a product's status ended.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    /// Written, or nothing to write.
    Done,
    /// The kept OpenAPI document read back is not the one the status names (it changed meanwhile): try again.
    NotYet,
}

/// Writes `status` with server-side apply if it differs from the product's.
async fn write_status(ctx: &Context, product: &APIProduct, ns: &str, mut status: APIProductStatus) -> Result<Written> {
    if product.status.as_ref() == Some(&status) {
        return Ok(Written::Done);
    }
    let api: Api<APIProduct> = Api::namespaced(ctx.client.clone(), ns);
    if let Some(kept) = status.openapi.as_mut().filter(|o| o.raw.is_empty()) {
        // The cache holds products without their documents: a kept document is read back to write it again.
        let live = api.get_opt(&product.name_any()).await?.and_then(|p| p.status?.openapi);
        match live.filter(|l| l.last_sync_time == kept.last_sync_time) {
            Some(live) => kept.raw = live.raw,
            None => return Ok(Written::NotYet),
        }
    }
    let patch = json!({"apiVersion": apiportal_core::API_VERSION, "kind": "APIProduct", "status": status});
    api.patch_status(&product.name_any(), &PatchParams::apply(BRIDGE_FIELD_MANAGER).force(), &Patch::Apply(&patch))
        .await?;
    tracing::info!("status updated");
    Ok(Written::Done)
}

#[cfg(test)]
mod tests;
