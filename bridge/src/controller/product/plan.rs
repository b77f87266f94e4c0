//! The product reconcile's decision, pure: from the product, its route and the policies in the cluster (and the
//! answers of the fetches it asked for) to the status it should have. Which fetches to make is decided first
//! (`fetches`), since the status depends on their answers; every case is unit-tested below.

use std::{sync::Arc, time::Duration};

use apiportal_core::{
    APIProduct, APIProductStatus, attachment, issuance,
    resources::{
        apiproduct::{DiscoveredPlan, OidcDiscovery, OpenApiStatus},
        authpolicy::{AuthPolicy, AuthScheme},
        conditions as cond,
        httproute::HTTPRoute,
        planpolicy::PlanPolicy,
    },
};
use bytes::Bytes;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::{controller::conditions::Conditions, fetch::FetchError};

/// Discovery is run again this often even without a change, to retry OpenAPI and OIDC fetches.
pub const RESYNC: Duration = Duration::from_secs(300);

pub struct Observed<'a> {
    pub product: &'a APIProduct,
    pub route: Option<&'a HTTPRoute>,
    pub auth_policies: &'a [Arc<AuthPolicy>],
    pub plan_policies: &'a [Arc<PlanPolicy>],
    pub now: Timestamp,
    /// The largest OpenAPI document kept.
    pub openapi_max_bytes: usize,
}

/// What to fetch before planning.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fetches {
    /// The OIDC issuer's discovery document.
    pub oidc: Option<String>,
    /// The product's OpenAPI document.
    pub openapi: Option<String>,
}

/// What the fetches answered.
#[derive(Debug, Default)]
pub struct Fetched {
    pub oidc: Option<Result<Bytes, FetchError>>,
    pub openapi: Option<Result<Bytes, FetchError>>,
}

fn namespace(product: &APIProduct) -> String {
    product.namespace().unwrap_or_default()
}

/// The AuthPolicy that applies to the product's route, if any.
fn effective_auth<'a>(o: &'a Observed) -> Option<(&'a Arc<AuthPolicy>, attachment::Attachment)> {
    let route = o.route?;
    let ns = namespace(o.product);
    attachment::effective(o.auth_policies, &ns, &route.name_any(), &route.accepting_gateways(&ns))
}

fn previous(o: &Observed) -> APIProductStatus {
    o.product.status.clone().unwrap_or_default()
}

pub fn fetches(o: &Observed) -> Fetches {
    let previous = previous(o);
    let scheme = effective_auth(o).map(|(p, _)| AuthScheme { authentication: p.authentication() });
    // The token endpoint is fetched again only when the issuer changes or the last attempt failed.
    let oidc = scheme.as_ref().and_then(|s| s.jwt_issuer()).and_then(|issuer| {
        let same_issuer = previous.discovered_auth_scheme.as_ref().and_then(|s| s.jwt_issuer()) == Some(issuer);
        let known = previous.oidc_discovery.as_ref().is_some_and(|d| d.token_endpoint.is_some());
        (!(same_issuer && known)).then(|| format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')))
    });
    // The document is fetched again when the spec changed or the last attempt failed.
    let openapi = o.product.spec.documentation.as_ref().and_then(|d| d.openapi_spec_url.clone()).filter(|_| {
        !(previous.observed_generation == o.product.metadata.generation
            && cond::is_true(&previous.conditions, "OpenAPISpecReady")
            && previous.openapi.is_some())
    });
    Fetches { oidc, openapi }
}

pub fn plan(o: &Observed, fetched: Fetched) -> APIProductStatus {
    let previous = previous(o);
    let generation = o.product.metadata.generation;
    let mut conditions = Conditions::new(&previous.conditions, generation, o.now);
    let mut status = APIProductStatus { observed_generation: generation, ..Default::default() };
    let ns = namespace(o.product);
    let route_name = &o.product.spec.target_ref.name;

    let Some(route) = o.route else {
        conditions.set("Ready", false, "HTTPRouteNotFound", format!("HTTPRoute {ns}/{route_name} not found"));
        let refusal = issuance::evaluate(&ns, &o.product.name_any(), None, None).expect_err("no route, no keys");
        conditions.set("KeysIssuable", false, refusal.reason.as_str(), refusal.message);
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
    let gateways = route.accepting_gateways(&ns);

    match attachment::effective(o.plan_policies, &ns, route_name, &gateways).map(|(p, _)| p) {
        Some(policy) => {
            status.discovered_plans = policy
                .spec
                .plans
                .iter()
                .map(|plan| DiscoveredPlan { tier: plan.tier.clone(), description: None, limits: plan.limits.clone() })
                .collect();
            let id = format!("{}/{}", policy.namespace().unwrap_or_default(), policy.name_any());
            conditions.set("PlanPolicyDiscovered", true, "Found", format!("PlanPolicy {id}"));
        }
        None => conditions.set(
            "PlanPolicyDiscovered",
            false,
            "NotFound",
            format!("no PlanPolicy targets HTTPRoute {ns}/{route_name} or a Gateway that accepted it"),
        ),
    }

    let effective = effective_auth(o);
    match issuance::evaluate(&ns, &o.product.name_any(), Some(route), effective.map(|(p, a)| (p.as_ref(), a))) {
        Ok(issuance) => {
            let message = format!("keys are issued for AuthPolicy {} rule {:?}", issuance.auth_policy, issuance.rule);
            conditions.set("KeysIssuable", true, "ProductScopedSelector", message);
            status.key_issuance = Some(issuance);
        }
        Err(refusal) => conditions.set("KeysIssuable", false, refusal.reason.as_str(), refusal.message),
    }
    match effective.map(|(p, _)| p) {
        Some(policy) => {
            let scheme = AuthScheme { authentication: policy.authentication() };
            let id = format!("{}/{}", policy.namespace().unwrap_or_default(), policy.name_any());
            if policy.is_enforced() {
                conditions.set("AuthPolicyDiscovered", true, "Found", format!("AuthPolicy {id}"));
            } else {
                let message = format!("AuthPolicy {id} is not both Accepted and Enforced yet");
                conditions.set("AuthPolicyDiscovered", false, "AuthPolicyNotReady", message);
            }
            oidc(&scheme, &previous, fetched.oidc, &mut status, &mut conditions);
            status.discovered_auth_scheme = Some(scheme);
        }
        None => {
            let message = format!("no AuthPolicy targets HTTPRoute {ns}/{route_name} or a Gateway that accepted it");
            conditions.set("AuthPolicyDiscovered", false, "NotFound", message);
            conditions.set("OIDCDiscovered", false, "NoOIDCAuth", "no AuthPolicy");
        }
    }
    openapi(o, &previous, fetched.openapi, &mut status, &mut conditions);
    status.conditions = conditions.built;
    status
}

fn oidc(
    scheme: &AuthScheme,
    previous: &APIProductStatus,
    fetched: Option<Result<Bytes, FetchError>>,
    status: &mut APIProductStatus,
    conditions: &mut Conditions<'_>,
) {
    let Some(issuer) = scheme.jwt_issuer() else {
        conditions.set("OIDCDiscovered", false, "NoOIDCAuth", "the AuthPolicy has no JWT authentication");
        return;
    };
    let endpoint = match fetched {
        // Not fetched: the same issuer's endpoint is known.
        None => previous
            .oidc_discovery
            .as_ref()
            .and_then(|d| d.token_endpoint.clone())
            .ok_or_else(|| "not fetched yet".to_owned()),
        Some(Ok(body)) => serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["token_endpoint"].as_str().map(str::to_owned))
            .filter(|e| !e.is_empty())
            .ok_or_else(|| "its discovery document has no token_endpoint".to_owned()),
        Some(Err(e)) => Err(e.to_string()),
    };
    match endpoint {
        Ok(endpoint) => {
            status.oidc_discovery = Some(OidcDiscovery { token_endpoint: Some(endpoint) });
            conditions.set("OIDCDiscovered", true, "Discovered", format!("token endpoint of {issuer}"));
        }
        Err(e) => conditions.set("OIDCDiscovered", false, "DiscoveryFailed", format!("discovery of {issuer}: {e}")),
    }
}

fn openapi(
    o: &Observed,
    previous: &APIProductStatus,
    fetched: Option<Result<Bytes, FetchError>>,
    status: &mut APIProductStatus,
    conditions: &mut Conditions<'_>,
) {
    let Some(url) = o.product.spec.documentation.as_ref().and_then(|d| d.openapi_spec_url.clone()) else {
        return;
    };
    match fetched {
        // Not fetched: the document of this generation is kept.
        None => {
            status.openapi = previous.openapi.clone();
            conditions.set("OpenAPISpecReady", true, "SpecFetched", format!("fetched from {url}"));
            return;
        }
        Some(Ok(body)) => match String::from_utf8(body.to_vec()) {
            Ok(raw) if crate::fetch::is_openapi(&raw) => {
                status.openapi = Some(OpenApiStatus {
                    raw,
                    last_sync_time: Time(o.now),
                    max_size_used: Some(o.openapi_max_bytes as i64),
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
        Some(Err(FetchError::TooLarge(max))) => {
            conditions.set("OpenAPISpecReady", false, "SpecSizeTooLarge", format!("{url} is larger than {max} bytes"))
        }
        Some(Err(e @ FetchError::InvalidUrl(..))) => {
            conditions.set("OpenAPISpecReady", false, "RequestCreationFailed", e.to_string())
        }
        Some(Err(e @ FetchError::Refused { .. })) => {
            conditions.set("OpenAPISpecReady", false, "DestinationRefused", e.to_string())
        }
        Some(Err(e)) => conditions.set(
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::fetch::Refusal;

    const T0: &str = "2026-01-01T00:00:00Z";

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn product(extra: Value) -> APIProduct {
        let mut p = json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
            "metadata": {"name": "toys", "namespace": "shop", "generation": 2},
            "spec": {"displayName": "Toys", "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toys"}}});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        serde_json::from_value(p).unwrap()
    }

    fn route(accepted: bool) -> HTTPRoute {
        serde_json::from_value(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "toys", "namespace": "shop"}, "spec": {"hostnames": ["toys.example.com"], "parentRefs": [{"name": "gw"}]},
            "status": {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "x", "conditions": [
                {"type": "Accepted", "status": if accepted { "True" } else { "False" }, "reason": "r", "message": "", "lastTransitionTime": T0}]}]}}))
        .unwrap()
    }

    fn auth(authentication: Value) -> Arc<AuthPolicy> {
        Arc::new(serde_json::from_value(json!({"apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy",
            "metadata": {"name": "toys-keys", "namespace": "shop", "creationTimestamp": T0},
            "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toys"}, "rules": {"authentication": authentication}},
            "status": {"conditions": [
                {"type": "Accepted", "status": "True", "reason": "r", "message": "", "lastTransitionTime": T0},
                {"type": "Enforced", "status": "True", "reason": "r", "message": "", "lastTransitionTime": T0}]}})).unwrap())
    }

    fn keys() -> Arc<AuthPolicy> {
        auth(
            json!({"api-key": {"apiKey": {"selector": {"matchLabels": {"devportal.kuadrant.io/apiproduct": "toys", "devportal.kuadrant.io/apiproduct-namespace": "shop"}}}}}),
        )
    }

    fn plans() -> Arc<PlanPolicy> {
        Arc::new(
            serde_json::from_value(json!({"apiVersion": "extensions.kuadrant.io/v1alpha1", "kind": "PlanPolicy",
            "metadata": {"name": "toys-plans", "namespace": "shop"},
            "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toys"},
                     "plans": [{"tier": "gold", "predicate": "x", "limits": {"daily": 100}}]}}))
            .unwrap(),
        )
    }

    fn observed<'a>(
        p: &'a APIProduct,
        r: Option<&'a HTTPRoute>,
        a: &'a [Arc<AuthPolicy>],
        pl: &'a [Arc<PlanPolicy>],
    ) -> Observed<'a> {
        Observed { product: p, route: r, auth_policies: a, plan_policies: pl, now: now(), openapi_max_bytes: 1000 }
    }

    fn condition(status: &APIProductStatus, type_: &str) -> (String, String) {
        let c = cond::find(&status.conditions, type_).unwrap_or_else(|| panic!("no {type_}"));
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn a_product_over_an_accepted_route_with_its_policies_is_ready_and_issues_keys() {
        let (p, r) = (product(json!({})), route(true));
        let status = plan(&observed(&p, Some(&r), &[keys()], &[plans()]), Fetched::default());
        assert_eq!(condition(&status, "Ready"), ("True".into(), "HTTPRouteAccepted".into()));
        assert_eq!(condition(&status, "PlanPolicyDiscovered"), ("True".into(), "Found".into()));
        assert_eq!(condition(&status, "KeysIssuable"), ("True".into(), "ProductScopedSelector".into()));
        assert_eq!(status.discovered_plans[0].tier, "gold");
        assert_eq!(status.hostnames, ["toys.example.com"]);
        assert_eq!(status.key_issuance.unwrap().auth_policy, "shop/toys-keys");
        assert_eq!(status.observed_generation, Some(2));
    }

    #[test]
    fn a_missing_route_says_so_and_issues_nothing() {
        let p = product(json!({}));
        let status = plan(&observed(&p, None, &[keys()], &[plans()]), Fetched::default());
        assert_eq!(condition(&status, "Ready"), ("False".into(), "HTTPRouteNotFound".into()));
        assert_eq!(condition(&status, "KeysIssuable").1, "HTTPRouteNotFound");
        assert!(status.discovered_plans.is_empty() && status.key_issuance.is_none());
    }

    #[test]
    fn the_oidc_endpoint_is_fetched_once_per_issuer() {
        let jwt = auth(json!({"sso": {"jwt": {"issuerUrl": "https://sso.example.com/realms/shop/"}}}));
        let (p, r) = (product(json!({})), route(true));
        let auths = [jwt];
        let o = observed(&p, Some(&r), &auths, &[]);
        assert_eq!(
            fetches(&o).oidc.as_deref(),
            Some("https://sso.example.com/realms/shop/.well-known/openid-configuration")
        );
        let body = Bytes::from(r#"{"token_endpoint": "https://sso.example.com/token"}"#);
        let status = plan(&o, Fetched { oidc: Some(Ok(body)), openapi: None });
        assert_eq!(
            status.oidc_discovery.as_ref().unwrap().token_endpoint.as_deref(),
            Some("https://sso.example.com/token")
        );
        // With that status in place, nothing is fetched again and the endpoint is kept.
        let p2 = product(json!({"status": serde_json::to_value(&status).unwrap()}));
        let o2 = observed(&p2, Some(&r), &auths, &[]);
        assert_eq!(fetches(&o2).oidc, None);
        assert_eq!(plan(&o2, Fetched::default()).oidc_discovery, status.oidc_discovery);
    }

    #[test]
    fn an_openapi_fetch_is_judged_and_nothing_foreign_is_kept() {
        let (p, r) = (
            product(
                json!({"spec": {"displayName": "Toys", "targetRef": {"name": "toys"}, "documentation": {"openAPISpecURL": "https://docs.example.com/o.json"}}}),
            ),
            route(true),
        );
        let o = observed(&p, Some(&r), &[], &[]);
        assert_eq!(fetches(&o).openapi.as_deref(), Some("https://docs.example.com/o.json"));
        let fetched = |result| Fetched { oidc: None, openapi: Some(result) };
        let ok = plan(&o, fetched(Ok(Bytes::from(r#"{"openapi": "3.0.0"}"#))));
        assert_eq!(condition(&ok, "OpenAPISpecReady"), ("True".into(), "SpecFetched".into()));
        assert_eq!(ok.openapi.unwrap().last_sync_time.0, now());
        let foreign = plan(&o, fetched(Ok(Bytes::from(r#"{"instance-id": "i-123"}"#))));
        assert_eq!(condition(&foreign, "OpenAPISpecReady").1, "NotAnOpenAPIDocument");
        assert!(foreign.openapi.is_none());
        let refused =
            plan(&o, fetched(Err(FetchError::Refused { host: "169.254.169.254".into(), refusal: Refusal::Denied })));
        assert_eq!(condition(&refused, "OpenAPISpecReady").1, "DestinationRefused");
        let big = plan(&o, fetched(Err(FetchError::TooLarge(1000))));
        assert_eq!(condition(&big, "OpenAPISpecReady").1, "SpecSizeTooLarge");
        let failed = plan(&o, fetched(Err(FetchError::Failed("connection refused by 10.0.0.7:8080".into()))));
        let message = cond::find(&failed.conditions, "OpenAPISpecReady").unwrap().message.clone();
        assert!(!message.contains("10.0.0.7"), "a failure repeats nothing of the remote side: {message}");
    }
}
