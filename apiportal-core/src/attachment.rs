//! Which Kuadrant policy applies to a route, by Gateway API policy attachment as Kuadrant implements it: a
//! policy attaches to the route itself or to a Gateway that accepted the route, only through a `targetRef` in
//! the Gateway API group; a Gateway policy's `overrides` win over the route's own policy, which wins over the
//! Gateway's defaults. Policies are never merged; among equals the oldest wins (then the name), as Kuadrant
//! resolves conflicts, so every replica picks the same one.

use std::sync::Arc;

use kube::ResourceExt;

use crate::resources::{
    authpolicy::AuthPolicy,
    httproute::{GATEWAY_API_GROUP, HTTPRoute, PolicyTargetRef},
    planpolicy::PlanPolicy,
};

/// A policy that attaches to Gateway API objects through a `targetRef`.
pub trait AttachedPolicy: ResourceExt {
    fn target(&self) -> &PolicyTargetRef;
    /// Whether it carries `overrides`, which win over the policies of the routes below a Gateway.
    fn overrides(&self) -> bool {
        false
    }
}

impl AttachedPolicy for AuthPolicy {
    fn target(&self) -> &PolicyTargetRef {
        &self.spec.target_ref
    }
    fn overrides(&self) -> bool {
        self.spec.overrides.is_some()
    }
}

impl AttachedPolicy for PlanPolicy {
    fn target(&self) -> &PolicyTargetRef {
        &self.spec.target_ref
    }
}

/// How a policy reaches the route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// `overrides` of a policy on a Gateway that accepted the route.
    GatewayOverrides,
    /// A policy on the route itself.
    Route,
    /// A policy on a Gateway that accepted the route, without overrides.
    GatewayDefaults,
}

/// The policy that applies to route `namespace/name`, with how it attaches. `accepting_gateways` are the
/// (namespace, name) of the Gateways that accepted the route (`HTTPRoute::accepting_gateways`): a policy on a
/// Gateway the route merely names, but that did not accept it, does not apply.
pub fn effective<'a, P: AttachedPolicy>(
    policies: &'a [Arc<P>],
    namespace: &str,
    route: &str,
    accepting_gateways: &[(String, String)],
) -> Option<(&'a Arc<P>, Attachment)> {
    let in_group = |p: &P| p.target().group == GATEWAY_API_GROUP;
    let on_route = |p: &P| {
        in_group(p)
            && p.target().kind == "HTTPRoute"
            && p.target().name == route
            && p.namespace().as_deref() == Some(namespace)
    };
    let on_gateway = |p: &P| {
        in_group(p)
            && p.target().kind == "Gateway"
            && accepting_gateways
                .iter()
                .any(|(ns, gw)| p.namespace().as_deref() == Some(ns.as_str()) && &p.target().name == gw)
    };
    let oldest = |candidates: Vec<&'a Arc<P>>| {
        candidates.into_iter().min_by_key(|p| (p.creation_timestamp().map(|t| t.0), p.namespace(), p.name_any()))
    };
    let gateway: Vec<&Arc<P>> = policies.iter().filter(|p| on_gateway(p)).collect();
    if let Some(p) = oldest(gateway.iter().copied().filter(|p| p.overrides()).collect()) {
        return Some((p, Attachment::GatewayOverrides));
    }
    if let Some(p) = oldest(policies.iter().filter(|p| on_route(p)).collect()) {
        return Some((p, Attachment::Route));
    }
    oldest(gateway).map(|p| (p, Attachment::GatewayDefaults))
}

impl HTTPRoute {
    /// The Gateways (namespace, name) whose status says they accepted this route.
    pub fn accepting_gateways(&self, route_namespace: &str) -> Vec<(String, String)> {
        self.status
            .iter()
            .flat_map(|s| &s.parents)
            .filter(|p| crate::resources::conditions::is_true(&p.conditions, "Accepted"))
            .filter(|p| {
                p.parent_ref.kind.as_deref().unwrap_or("Gateway") == "Gateway"
                    && p.parent_ref.group.as_deref().unwrap_or(GATEWAY_API_GROUP) == GATEWAY_API_GROUP
            })
            .map(|p| {
                (
                    p.parent_ref.namespace.clone().unwrap_or_else(|| route_namespace.to_owned()),
                    p.parent_ref.name.clone(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn auth_policy(ns: &str, name: &str, target: serde_json::Value, overrides: bool, created: &str) -> Arc<AuthPolicy> {
        let mut spec = json!({"targetRef": target});
        let rules = json!({"authentication": {"k": {"apiKey": {"selector": {"matchLabels": {"p": name}}}}}});
        if overrides {
            spec["overrides"] = json!({"rules": rules});
        } else {
            spec["rules"] = rules;
        }
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
                "spec": spec,
            }))
            .unwrap(),
        )
    }

    fn route_target(name: &str) -> serde_json::Value {
        json!({"group": GATEWAY_API_GROUP, "kind": "HTTPRoute", "name": name})
    }

    fn gateway_target(name: &str) -> serde_json::Value {
        json!({"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": name})
    }

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-02T00:00:00Z";

    fn gateways() -> Vec<(String, String)> {
        vec![("gw-ns".into(), "external".into())]
    }

    fn pick(policies: &[Arc<AuthPolicy>]) -> Option<(String, Attachment)> {
        effective(policies, "shop", "toys", &gateways()).map(|(p, a)| (p.name_any(), a))
    }

    #[test]
    fn the_routes_own_policy_wins_over_gateway_defaults() {
        let policies = [
            auth_policy("gw-ns", "gateway", gateway_target("external"), false, T0),
            auth_policy("shop", "route", route_target("toys"), false, T1),
        ];
        assert_eq!(pick(&policies), Some(("route".into(), Attachment::Route)));
        assert_eq!(pick(&policies[..1]), Some(("gateway".into(), Attachment::GatewayDefaults)));
    }

    #[test]
    fn gateway_overrides_win_over_the_routes_own_policy() {
        let policies = [
            auth_policy("shop", "route", route_target("toys"), false, T0),
            auth_policy("gw-ns", "gateway", gateway_target("external"), true, T1),
        ];
        assert_eq!(pick(&policies), Some(("gateway".into(), Attachment::GatewayOverrides)));
    }

    #[test]
    fn policies_outside_the_gateway_api_group_or_on_gateways_that_did_not_accept_the_route_do_not_apply() {
        let wrong_group = auth_policy(
            "shop",
            "wrong-group",
            json!({"group": "example.com", "kind": "HTTPRoute", "name": "toys"}),
            false,
            T0,
        );
        let other_gateway = auth_policy("gw-ns", "other", gateway_target("internal"), true, T0);
        let other_namespace = auth_policy("elsewhere", "route", route_target("toys"), false, T0);
        assert_eq!(pick(&[wrong_group, other_gateway, other_namespace]), None);
    }

    #[test]
    fn among_equals_the_oldest_wins_then_the_name() {
        let policies = [
            auth_policy("shop", "b-newer", route_target("toys"), false, T1),
            auth_policy("shop", "c-older", route_target("toys"), false, T0),
            auth_policy("shop", "a-newer", route_target("toys"), false, T1),
        ];
        assert_eq!(pick(&policies).unwrap().0, "c-older");
        assert_eq!(pick(&policies[..1]).unwrap().0, "b-newer");
        assert_eq!(pick(&[policies[0].clone(), policies[2].clone()]).unwrap().0, "a-newer");
    }

    #[test]
    fn only_parents_that_accepted_the_route_count() {
        let route: HTTPRoute = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "toys", "namespace": "shop"},
            "spec": {"parentRefs": [{"name": "a"}, {"name": "b", "namespace": "gw"}]},
            "status": {"parents": [
                {"parentRef": {"name": "a"}, "controllerName": "x", "conditions": [{"type": "Accepted", "status": "False", "reason": "r", "message": "", "lastTransitionTime": T0}]},
                {"parentRef": {"name": "b", "namespace": "gw"}, "controllerName": "x", "conditions": [{"type": "Accepted", "status": "True", "reason": "r", "message": "", "lastTransitionTime": T0}]},
                {"parentRef": {"name": "c", "kind": "Service", "group": ""}, "controllerName": "x", "conditions": [{"type": "Accepted", "status": "True", "reason": "r", "message": "", "lastTransitionTime": T0}]}
            ]}
        }))
        .unwrap();
        assert_eq!(route.accepting_gateways("shop"), vec![("gw".to_owned(), "b".to_owned())]);
    }
}
