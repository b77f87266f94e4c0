//! Whether the bridge may issue keys for a product: a key must open its own product and nothing else, for as long
//! as it is valid. The bridge writes an enforcement Secret only under an AuthPolicy that
//! - applies to the product's route (`attachment::effective`: the route's own, or a Gateway that accepted it),
//!   and is Enforced;
//! - selects Secrets with `matchLabels` that name this very product (`devportal.kuadrant.io/apiproduct` and
//!   `devportal.kuadrant.io/apiproduct-namespace`), in every apiKey rule, without `matchExpressions` or
//!   `allNamespaces: true`, and on no label but those the bridge derives from a key's identity.
//!
//! The last rule makes the whole class of "labels that stick" impossible: an enforcement Secret carries only
//! labels derived from its key's and product's identity (`secrets::enforcement_labels`), never one an AuthPolicy's
//! author chose, so no policy written later, anywhere, can be made to accept a key by a label its owner picked.
//! Whoever writes a policy that names another product's identity opens their own route to those keys: their
//! choice, about their route.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;

use crate::{
    attachment::Attachment,
    labels,
    reason::Reason,
    resources::{apiproduct::KeyIssuance, authpolicy::AuthPolicy, httproute::HTTPRoute},
    selector,
};

/// Why no key is issued: a condition reason and a message that says what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
}

fn refuse(reason: Reason, message: String) -> Refusal {
    Refusal { reason, message }
}

fn id<K: ResourceExt>(object: &K) -> String {
    format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any())
}

/// The labels that make a selector product-scoped, as `key: value` for messages.
fn product_labels(namespace: &str, name: &str) -> String {
    format!("{}: {name} and {}: {namespace}", labels::APIPRODUCT, labels::APIPRODUCT_NAMESPACE)
}

/// Decides whether product `namespace/name` may have keys issued. `route` is the product's HTTPRoute (if found),
/// `policy` the AuthPolicy that applies to it (see `attachment::effective`).
pub fn evaluate(
    namespace: &str,
    name: &str,
    route: Option<&HTTPRoute>,
    policy: Option<(&AuthPolicy, Attachment)>,
) -> Result<KeyIssuance, Refusal> {
    let Some(route) = route else {
        return Err(refuse(
            Reason::HttpRouteNotFound,
            "the product's HTTPRoute does not exist: no key is issued".into(),
        ));
    };
    if !route.is_accepted() {
        return Err(refuse(
            Reason::HttpRouteNotAccepted,
            format!("HTTPRoute {} is not accepted by any Gateway: no key is issued until it is", id(route)),
        ));
    }
    let Some((policy, _)) = policy else {
        return Err(refuse(
            Reason::AuthPolicyNotFound,
            format!(
                "no AuthPolicy applies to HTTPRoute {} (on the route, or on a Gateway that accepted it): no key is issued",
                id(route)
            ),
        ));
    };
    let policy_id = id(policy);
    if !policy.is_enforced() {
        return Err(refuse(
            Reason::AuthPolicyNotEnforced,
            format!("AuthPolicy {policy_id} is not both Accepted and Enforced: no key is issued until it is"),
        ));
    }
    let rules: Vec<(String, LabelSelector, bool)> = policy
        .authentication()
        .into_iter()
        .filter_map(|(rule, r)| r.api_key.map(|k| (rule, k.selector, k.all_namespaces.unwrap_or(false))))
        .collect();
    if rules.is_empty() {
        return Err(refuse(
            Reason::NoApiKeyAuthentication,
            format!("AuthPolicy {policy_id} authenticates without API keys: consumers use its other credentials"),
        ));
    }
    let wanted = product_labels(namespace, name);
    for (rule, selector, all_namespaces) in &rules {
        if *all_namespaces {
            return Err(refuse(
                Reason::AllNamespacesRefused,
                format!(
                    "AuthPolicy {policy_id} rule {rule:?} sets apiKey.allNamespaces: true, so anyone who may create a Secret in any namespace could mint keys; set it to false (the bridge writes keys where consumers cannot)"
                ),
            ));
        }
        if selector.match_expressions.as_ref().is_some_and(|e| !e.is_empty()) {
            return Err(refuse(
                Reason::MatchExpressionsRefused,
                format!(
                    "AuthPolicy {policy_id} rule {rule:?} selects keys with matchExpressions; select them with matchLabels that name this product: {wanted}"
                ),
            ));
        }
        let match_labels = selector.match_labels.clone().unwrap_or_default();
        let named_product = (match_labels.get(labels::APIPRODUCT), match_labels.get(labels::APIPRODUCT_NAMESPACE));
        match named_product {
            (Some(p), Some(ns)) if p == name && ns == namespace => {}
            (Some(p), Some(ns)) => {
                return Err(refuse(
                    Reason::SelectorNamesAnotherProduct,
                    format!(
                        "the route's AuthPolicy {policy_id} (rule {rule:?}) selects the keys of APIProduct {ns}/{p}, not of this product: a route's keys belong to one product; give this product a route of its own"
                    ),
                ));
            }
            _ => {
                return Err(refuse(
                    Reason::SelectorNotProductScoped,
                    format!(
                        "AuthPolicy {policy_id} rule {rule:?} selects keys by {{{}}}, which does not name this product: add {wanted} to its matchLabels",
                        selector::display(&match_labels)
                    ),
                ));
            }
        }
        for key in [labels::APIKEY, labels::APIKEY_NAMESPACE] {
            if match_labels.contains_key(key) {
                return Err(refuse(
                    Reason::SelectorConflictsWithKeys,
                    format!(
                        "AuthPolicy {policy_id} rule {rule:?} selects on {key}, which differs for every key: remove it"
                    ),
                ));
            }
        }
        for (key, value) in
            [(labels::AUTHORINO_MANAGED_BY, labels::AUTHORINO_MANAGED_BY_VALUE), (labels::ENFORCEMENT, "true")]
        {
            if match_labels.get(key).is_some_and(|v| v != value) {
                return Err(refuse(
                    Reason::SelectorConflictsWithKeys,
                    format!(
                        "AuthPolicy {policy_id} rule {rule:?} wants {key}={}, but keys carry {key}={value}",
                        match_labels[key]
                    ),
                ));
            }
        }
        let foreign: Vec<String> = match_labels
            .iter()
            .filter(|(k, _)| !crate::secrets::ENFORCEMENT_LABEL_KEYS.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !foreign.is_empty() {
            return Err(refuse(
                Reason::SelectorHasForeignLabels,
                format!(
                    "AuthPolicy {policy_id} rule {rule:?} also selects on {}, which keys never carry: the bridge labels a key with its identity only, so that no label anyone picks can make another policy accept it; drop {} from the selector (select on {wanted})",
                    foreign.join(","),
                    if foreign.len() == 1 { "it" } else { "them" },
                ),
            ));
        }
    }
    let (rule, selector, _) = &rules[0];
    Ok(KeyIssuance {
        auth_policy: policy_id,
        rule: rule.clone(),
        match_labels: selector.match_labels.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::attachment;

    const T0: &str = "2026-01-01T00:00:00Z";

    fn conditions(enforced: bool) -> Value {
        let status = if enforced { "True" } else { "False" };
        json!([
            {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "", "lastTransitionTime": T0},
            {"type": "Enforced", "status": status, "reason": "Enforced", "message": "", "lastTransitionTime": T0},
        ])
    }

    fn policy(ns: &str, name: &str, route: &str, api_key: Value, enforced: bool) -> Arc<AuthPolicy> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": T0},
                "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route},
                         "rules": {"authentication": {"api-key": {"apiKey": api_key, "credentials": {"authorizationHeader": {"prefix": "APIKEY"}}}}}},
                "status": {"conditions": conditions(enforced)},
            }))
            .unwrap(),
        )
    }

    fn scoped(ns: &str, product: &str, extra: &[(&str, &str)]) -> Value {
        let mut labels =
            json!({"devportal.kuadrant.io/apiproduct": product, "devportal.kuadrant.io/apiproduct-namespace": ns});
        for (k, v) in extra {
            labels[*k] = json!(v);
        }
        json!({"selector": {"matchLabels": labels}})
    }

    fn route(ns: &str, name: &str, accepted: bool) -> HTTPRoute {
        let status = if accepted { "True" } else { "False" };
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": "gw"}]},
            "status": {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "x",
                "conditions": [{"type": "Accepted", "status": status, "reason": "r", "message": "", "lastTransitionTime": T0}]}]}
        }))
        .unwrap()
    }

    fn decide(
        ns: &str,
        product: &str,
        route: &HTTPRoute,
        policies: &[Arc<AuthPolicy>],
    ) -> Result<KeyIssuance, Refusal> {
        let gateways = route.accepting_gateways(ns);
        let effective = attachment::effective(policies, ns, &route.name_any(), &gateways);
        evaluate(ns, product, Some(route), effective.map(|(p, a)| (p.as_ref(), a)))
    }

    fn reason(result: Result<KeyIssuance, Refusal>) -> Reason {
        result.expect_err("refused").reason
    }

    #[test]
    fn a_product_scoped_enforced_policy_on_an_accepted_route_issues() {
        let markers = [(labels::AUTHORINO_MANAGED_BY, "authorino"), (labels::ENFORCEMENT, "true")];
        let policies = [policy("shop", "toys-keys", "toys", scoped("shop", "toys", &markers), true)];
        let issuance = decide("shop", "toys", &route("shop", "toys", true), &policies).unwrap();
        assert_eq!(issuance.auth_policy, "shop/toys-keys");
        assert_eq!(issuance.rule, "api-key");
        assert_eq!(issuance.match_labels[labels::APIPRODUCT], "toys");
    }

    #[test]
    fn a_selector_that_needs_a_label_keys_never_carry_is_refused_naming_it() {
        // The sticky-label attack: a tenant's product-scoped selector that also asks for app=payments, a label
        // another team's legacy policy selects on. Keys carry their identity only, so the selector is refused.
        let policies =
            [policy("evil", "mine", "evil", scoped("evil", "evil", &[("app", "payments"), ("team", "x")]), true)];
        let refusal = decide("evil", "evil", &route("evil", "evil", true), &policies).unwrap_err();
        assert_eq!(refusal.reason, Reason::SelectorHasForeignLabels);
        assert!(
            refusal.message.contains("app=payments,team=x") && refusal.message.contains("drop them"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn two_products_on_one_route_the_policy_names_one_and_the_other_is_told_which() {
        let policies = [policy("shop", "toys-keys", "toys", scoped("shop", "toys", &[]), true)];
        let refusal = decide("shop", "toys-partner", &route("shop", "toys", true), &policies).unwrap_err();
        assert_eq!(refusal.reason, Reason::SelectorNamesAnotherProduct);
        assert!(refusal.message.contains("APIProduct shop/toys"), "{}", refusal.message);
    }

    #[test]
    fn a_selector_that_does_not_name_the_product_says_which_labels_to_add() {
        let policies =
            [policy("shop", "toys-keys", "toys", json!({"selector": {"matchLabels": {"app": "toys"}}}), true)];
        let refusal = decide("shop", "toys", &route("shop", "toys", true), &policies).unwrap_err();
        assert_eq!(refusal.reason, Reason::SelectorNotProductScoped);
        assert!(
            refusal.message.contains(
                "devportal.kuadrant.io/apiproduct: toys and devportal.kuadrant.io/apiproduct-namespace: shop"
            ),
            "{}",
            refusal.message
        );
        // Naming the product without its namespace is not enough: a product of that name elsewhere would match.
        let half = [policy(
            "shop",
            "toys-keys",
            "toys",
            json!({"selector": {"matchLabels": {"devportal.kuadrant.io/apiproduct": "toys"}}}),
            true,
        )];
        assert_eq!(
            reason(decide("shop", "toys", &route("shop", "toys", true), &half)),
            Reason::SelectorNotProductScoped
        );
    }

    #[test]
    fn a_tenant_copying_another_products_selector_gets_nothing() {
        // The victim's selector, copied verbatim onto the tenant's own route.
        let copied = scoped("shop", "toys", &[]);
        let policies =
            [policy("shop", "toys-keys", "toys", copied.clone(), true), policy("evil", "mine", "evil", copied, true)];
        assert_eq!(
            reason(decide("evil", "evil", &route("evil", "evil", true), &policies)),
            Reason::SelectorNamesAnotherProduct
        );
    }

    #[test]
    fn all_namespaces_match_expressions_and_empty_selectors_are_refused() {
        let r = route("shop", "toys", true);
        let mut all_ns = scoped("shop", "toys", &[]);
        all_ns["allNamespaces"] = json!(true);
        assert_eq!(
            reason(decide("shop", "toys", &r, &[policy("shop", "p", "toys", all_ns, true)])),
            Reason::AllNamespacesRefused
        );
        let mut expressions = scoped("shop", "toys", &[]);
        expressions["selector"]["matchExpressions"] = json!([{"key": "app", "operator": "Exists"}]);
        assert_eq!(
            reason(decide("shop", "toys", &r, &[policy("shop", "p", "toys", expressions, true)])),
            Reason::MatchExpressionsRefused
        );
        assert_eq!(
            reason(decide("shop", "toys", &r, &[policy("shop", "p", "toys", json!({"selector": {}}), true)])),
            Reason::SelectorNotProductScoped
        );
    }

    #[test]
    fn policies_that_are_not_enforced_and_routes_that_are_not_accepted_issue_nothing() {
        let policies = [policy("shop", "p", "toys", scoped("shop", "toys", &[]), false)];
        assert_eq!(
            reason(decide("shop", "toys", &route("shop", "toys", true), &policies)),
            Reason::AuthPolicyNotEnforced
        );
        let enforced = [policy("shop", "p", "toys", scoped("shop", "toys", &[]), true)];
        assert_eq!(
            reason(decide("shop", "toys", &route("shop", "toys", false), &enforced)),
            Reason::HttpRouteNotAccepted
        );
        assert_eq!(reason(decide("shop", "toys", &route("shop", "toys", true), &[])), Reason::AuthPolicyNotFound);
        assert_eq!(evaluate("shop", "toys", None, None).unwrap_err().reason, Reason::HttpRouteNotFound);
    }

    #[test]
    fn a_policy_in_another_api_group_is_not_the_one_that_applies() {
        let mut wrong = (*policy("shop", "p", "toys", scoped("shop", "toys", &[]), true)).clone();
        wrong.spec.target_ref.group = "example.com".into();
        assert_eq!(
            reason(decide("shop", "toys", &route("shop", "toys", true), &[Arc::new(wrong)])),
            Reason::AuthPolicyNotFound
        );
    }
}

/// The AuthPolicy that lets product `namespace/product` have keys: on its route, selecting only keys labelled
/// for this product, sent as `Authorization: <prefix> <key>`. What `kubectl apiportal expose --product` applies
/// and the documentation shows.
pub fn product_auth_policy(namespace: &str, route: &str, product: &str, prefix: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "kuadrant.io/v1",
        "kind": "AuthPolicy",
        "metadata": {"name": format!("{product}-keys"), "namespace": namespace},
        "spec": {
            "targetRef": {"group": crate::resources::httproute::GATEWAY_API_GROUP, "kind": "HTTPRoute", "name": route},
            "rules": {"authentication": {"api-key": {
                "apiKey": {
                    "selector": {"matchLabels": {labels::APIPRODUCT: product, labels::APIPRODUCT_NAMESPACE: namespace}},
                    "allNamespaces": false
                },
                "credentials": {"authorizationHeader": {"prefix": prefix}}
            }}}
        }
    })
}

#[cfg(test)]
mod generated_policy {
    use super::*;

    #[test]
    fn the_policy_expose_writes_is_one_the_bridge_issues_keys_under() {
        let mut policy: AuthPolicy =
            serde_json::from_value(product_auth_policy("shop", "toys", "toys", "APIKEY")).unwrap();
        policy.status = Some(serde_json::from_value(serde_json::json!({"conditions": [
            {"type": "Accepted", "status": "True", "reason": "r", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Enforced", "status": "True", "reason": "r", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]})).unwrap());
        let route: HTTPRoute = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "toys", "namespace": "shop"},
            "spec": {}, "status": {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "x",
                "conditions": [{"type": "Accepted", "status": "True", "reason": "r", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}
        }))
        .unwrap();
        let issuance = evaluate("shop", "toys", Some(&route), Some((&policy, Attachment::Route))).unwrap();
        assert_eq!(issuance.auth_policy, "shop/toys-keys");
    }
}
