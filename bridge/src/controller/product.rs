//! Product reconcile: resolve the HTTPRoute, discover the PlanPolicy and AuthPolicy that apply to it (the
//! route's own, else its Gateway's; never merged), the OIDC token endpoint and the OpenAPI document, and write
//! status with server-side apply. Missing pieces are conditions with reasons, never errors.

use std::{sync::Arc, time::Duration};

use apiportal_core::{
    APIProduct, APIProductStatus, attachment, issuance,
    labels::BRIDGE_FIELD_MANAGER,
    resources::{
        apiproduct::{DiscoveredPlan, OidcDiscovery, OpenApiStatus},
        authpolicy::{AuthPolicy, AuthScheme},
        conditions as cond,
        httproute::{HTTPRoute, PolicyTargetRef},
        planpolicy::PlanPolicy,
    },
};
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller,
        controller::Action,
        reflector::{ObjectRef, ReflectHandle, Store},
    },
};
use serde_json::json;

use super::{Context, conditions::Conditions};
use crate::{Error, Result};

/// Discovery is re-run this often even without a change, to retry OpenAPI and OIDC fetches.
const RESYNC: Duration = Duration::from_secs(300);

/// Builds the product controller over the shared caches; `become_leader` triggers a full pass.
pub fn controller(
    ctx: Arc<Context>,
    products_sub: ReflectHandle<APIProduct>,
    routes_sub: ReflectHandle<HTTPRoute>,
    auth_sub: ReflectHandle<AuthPolicy>,
    plan_sub: ReflectHandle<PlanPolicy>,
    become_leader: impl Stream<Item = ()> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> impl std::future::Future<Output = ()> {
    let products = ctx.caches.products.clone();
    let (by_route, by_auth, by_plan) = (products.clone(), products.clone(), products.clone());
    let (routes_for_auth, routes_for_plan) = (ctx.caches.routes.clone(), ctx.caches.routes.clone());
    Controller::for_shared_stream(products_sub, products)
        .with_config(ctx.controller_config())
        .watches_shared_stream(routes_sub, move |route: Arc<HTTPRoute>| {
            products_on_route(&by_route, &route.namespace().unwrap_or_default(), &route.name_any())
        })
        .watches_shared_stream(auth_sub, move |p: Arc<AuthPolicy>| {
            // Any AuthPolicy may select Secrets in the enforcement namespace: products whose selectors carry
            // labels of their own are checked again against it (see `issuance`).
            let mut affected =
                products_targeted(&by_auth, &routes_for_auth, &p.namespace().unwrap_or_default(), &p.spec.target_ref);
            affected.extend(
                by_auth.state().iter().filter(|product| has_extra_labels(product)).map(|p| ObjectRef::from(p.as_ref())),
            );
            affected
        })
        .watches_shared_stream(plan_sub, move |p: Arc<PlanPolicy>| {
            products_targeted(&by_plan, &routes_for_plan, &p.namespace().unwrap_or_default(), &p.spec.target_ref)
        })
        .reconcile_all_on(become_leader)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
}

fn has_extra_labels(product: &APIProduct) -> bool {
    let bridge_keys = apiportal_core::secrets::bridge_label_keys();
    product.key_issuance().is_some_and(|i| i.match_labels.keys().any(|k| !bridge_keys.contains(&k.as_str())))
}

fn products_on_route(products: &Store<APIProduct>, ns: &str, route: &str) -> Vec<ObjectRef<APIProduct>> {
    products
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns) && p.spec.target_ref.name == route)
        .map(|p| ObjectRef::from(p.as_ref()))
        .collect()
}

/// Products affected by a policy: on its route, or on any route attached to its Gateway.
fn products_targeted(
    products: &Store<APIProduct>,
    routes: &Store<HTTPRoute>,
    policy_ns: &str,
    target: &PolicyTargetRef,
) -> Vec<ObjectRef<APIProduct>> {
    match target.kind.as_str() {
        "HTTPRoute" => products_on_route(products, policy_ns, &target.name),
        "Gateway" => routes
            .state()
            .iter()
            .filter(|r| {
                let ns = r.namespace().unwrap_or_default();
                r.parent_gateways(&ns).iter().any(|(gw_ns, gw)| gw_ns == policy_ns && gw == &target.name)
            })
            .flat_map(|r| products_on_route(products, &r.namespace().unwrap_or_default(), &r.name_any()))
            .collect(),
        _ => Vec::new(),
    }
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
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let _timer = ctx.metrics.reconcile_timer("apiproduct");
    let ns = product.namespace().ok_or_else(|| Error::MissingNamespace(product.name_any()))?;
    let cap = product
        .spec
        .max_key_lifetime
        .as_deref()
        .and_then(|t| apiportal_core::duration::parse(t).ok())
        .map(|d| d.as_secs());
    ctx.lifetimes.ensure(&ns, &product.name_any(), cap).await?;
    let status = discover(&product, &ns, &ctx).await;
    if product.status.as_ref() != Some(&status) {
        let api: Api<APIProduct> = Api::namespaced(ctx.client.clone(), &ns);
        let mut status = status;
        if let Some(kept) = status.openapi.as_mut().filter(|o| o.raw.is_empty()) {
            // The cache holds products without their documents: a kept document is read back to write it again.
            let live = api.get_opt(&product.name_any()).await?.and_then(|p| p.status?.openapi);
            match live.filter(|l| l.last_sync_time == kept.last_sync_time) {
                Some(live) => kept.raw = live.raw,
                None => return Ok(Action::requeue(Duration::from_secs(1))),
            }
        }
        let patch = json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct", "status": status});
        api.patch_status(&product.name_any(), &PatchParams::apply(BRIDGE_FIELD_MANAGER).force(), &Patch::Apply(&patch))
            .await?;
        tracing::info!("status updated");
    }
    Ok(Action::requeue(RESYNC))
}

async fn discover(product: &APIProduct, ns: &str, ctx: &Context) -> APIProductStatus {
    let previous = product.status.clone().unwrap_or_default();
    let generation = product.metadata.generation;
    let mut conditions = Conditions::new(&previous.conditions, generation, Timestamp::now());
    let mut status = APIProductStatus { observed_generation: generation, ..Default::default() };
    let route_name = &product.spec.target_ref.name;

    let Some(route) = ctx.caches.route(ns, route_name) else {
        conditions.set("Ready", false, "HTTPRouteNotFound", format!("HTTPRoute {ns}/{route_name} not found"));
        let refusal = issuance::evaluate(ns, &product.name_any(), None, None, &[]).expect_err("no route, no keys");
        conditions.set("KeysIssuable", false, refusal.reason, refusal.message);
        status.conditions = conditions.built;
        return status;
    };
    if route.is_accepted() {
        conditions.set(
            "Ready",
            true,
            "HTTPRouteAccepted",
            format!("HTTPRoute {ns}/{route_name} is accepted by its gateway"),
        );
    } else {
        conditions.set(
            "Ready",
            false,
            "HTTPRouteNotAccepted",
            format!("HTTPRoute {ns}/{route_name} is not accepted by any parent gateway yet"),
        );
    }
    status.hostnames = route.spec.hostnames.clone();
    let gateways = route.accepting_gateways(ns);

    let plan_policies = ctx.caches.plan_policies.state();
    match attachment::effective(&plan_policies, ns, route_name, &gateways).map(|(p, _)| p) {
        Some(policy) => {
            status.discovered_plans = policy
                .spec
                .plans
                .iter()
                .map(|plan| DiscoveredPlan { tier: plan.tier.clone(), description: None, limits: plan.limits.clone() })
                .collect();
            conditions.set(
                "PlanPolicyDiscovered",
                true,
                "Found",
                format!("PlanPolicy {}/{}", policy.namespace().unwrap_or_default(), policy.name_any()),
            );
        }
        None => conditions.set(
            "PlanPolicyDiscovered",
            false,
            "NotFound",
            format!("no PlanPolicy targets HTTPRoute {ns}/{route_name} or a Gateway that accepted it"),
        ),
    }

    let auth_policies = ctx.caches.auth_policies.state();
    let effective = attachment::effective(&auth_policies, ns, route_name, &gateways);
    match issuance::evaluate(
        ns,
        &product.name_any(),
        Some(&route),
        effective.map(|(p, a)| (p.as_ref(), a)),
        &auth_policies,
    ) {
        Ok(issuance) => {
            conditions.set(
                "KeysIssuable",
                true,
                "ProductScopedSelector",
                format!("keys are issued for AuthPolicy {} rule {:?}", issuance.auth_policy, issuance.rule),
            );
            status.key_issuance = Some(issuance);
        }
        Err(refusal) => conditions.set("KeysIssuable", false, refusal.reason, refusal.message),
    }
    match effective.map(|(p, _)| p) {
        Some(policy) => {
            let scheme = AuthScheme { authentication: policy.authentication() };
            let id = format!("{}/{}", policy.namespace().unwrap_or_default(), policy.name_any());
            if policy.is_enforced() {
                conditions.set("AuthPolicyDiscovered", true, "Found", format!("AuthPolicy {id}"));
            } else {
                conditions.set(
                    "AuthPolicyDiscovered",
                    false,
                    "AuthPolicyNotReady",
                    format!("AuthPolicy {id} is not both Accepted and Enforced yet"),
                );
            }
            discover_oidc(&scheme, &previous, &mut status, &mut conditions, ctx).await;
            status.discovered_auth_scheme = Some(scheme);
        }
        None => {
            conditions.set(
                "AuthPolicyDiscovered",
                false,
                "NotFound",
                format!("no AuthPolicy targets HTTPRoute {ns}/{route_name} or a Gateway that accepted it"),
            );
            conditions.set("OIDCDiscovered", false, "NoOIDCAuth", "no AuthPolicy");
        }
    }

    discover_openapi(product, &previous, &mut status, &mut conditions, ctx).await;
    status.conditions = conditions.built;
    status
}

async fn discover_oidc(
    scheme: &AuthScheme,
    previous: &APIProductStatus,
    status: &mut APIProductStatus,
    conditions: &mut Conditions<'_>,
    ctx: &Context,
) {
    let Some(issuer) = scheme.jwt_issuer() else {
        conditions.set("OIDCDiscovered", false, "NoOIDCAuth", "the AuthPolicy has no JWT authentication");
        return;
    };
    // Fetched again only when the issuer changes or the last attempt failed.
    let same_issuer = previous.discovered_auth_scheme.as_ref().and_then(|s| s.jwt_issuer()) == Some(issuer);
    if same_issuer && let Some(known) = previous.oidc_discovery.as_ref().filter(|o| o.token_endpoint.is_some()) {
        status.oidc_discovery = Some(known.clone());
        conditions.set("OIDCDiscovered", true, "Discovered", format!("token endpoint of {issuer}"));
        return;
    }
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let endpoint = match ctx.fetcher.get(&url, 256 * 1024).await {
        Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["token_endpoint"].as_str().map(str::to_owned))
            .filter(|e| !e.is_empty())
            .ok_or_else(|| "the document has no token_endpoint".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    match endpoint {
        Ok(endpoint) => {
            status.oidc_discovery = Some(OidcDiscovery { token_endpoint: Some(endpoint) });
            conditions.set("OIDCDiscovered", true, "Discovered", format!("token endpoint of {issuer}"));
        }
        Err(e) => conditions.set("OIDCDiscovered", false, "DiscoveryFailed", format!("discovery of {issuer}: {e}")),
    }
}

async fn discover_openapi(
    product: &APIProduct,
    previous: &APIProductStatus,
    status: &mut APIProductStatus,
    conditions: &mut Conditions<'_>,
    ctx: &Context,
) {
    let Some(url) = product.spec.documentation.as_ref().and_then(|d| d.openapi_spec_url.clone()) else {
        return;
    };
    let fetched_for_this_generation = previous.observed_generation == product.metadata.generation
        && cond::is_true(&previous.conditions, "OpenAPISpecReady")
        && previous.openapi.is_some();
    if fetched_for_this_generation {
        status.openapi = previous.openapi.clone();
        conditions.set("OpenAPISpecReady", true, "SpecFetched", format!("fetched from {url}"));
        return;
    }
    use crate::fetch::FetchError;
    match ctx.fetcher.get(&url, ctx.openapi_max_bytes).await {
        Ok(body) => match String::from_utf8(body.to_vec()) {
            Ok(raw) if crate::fetch::is_openapi(&raw) => {
                status.openapi = Some(OpenApiStatus {
                    raw,
                    last_sync_time: Time(Timestamp::now()),
                    max_size_used: Some(ctx.openapi_max_bytes as i64),
                });
                conditions.set("OpenAPISpecReady", true, "SpecFetched", format!("fetched from {url}"));
            }
            // Whatever else was there stays unread: nothing of it is kept or repeated.
            _ => conditions.set(
                "OpenAPISpecReady",
                false,
                "NotAnOpenAPIDocument",
                format!("{url} is not an OpenAPI (3.x) or Swagger (2.0) document in JSON or YAML"),
            ),
        },
        Err(FetchError::TooLarge(max)) => {
            conditions.set("OpenAPISpecReady", false, "SpecSizeTooLarge", format!("{url} is larger than {max} bytes"))
        }
        Err(e @ FetchError::InvalidUrl(..)) => {
            conditions.set("OpenAPISpecReady", false, "RequestCreationFailed", e.to_string())
        }
        Err(e @ FetchError::Refused { .. }) => {
            conditions.set("OpenAPISpecReady", false, "DestinationRefused", e.to_string())
        }
        Err(e) => conditions.set(
            "OpenAPISpecReady",
            false,
            "FetchFailed",
            format!("{e}; retried every {}s", RESYNC.as_secs()),
        ),
    }
    // A failed refresh keeps the last good document.
    if status.openapi.is_none() {
        status.openapi = previous.openapi.clone();
    }
}
