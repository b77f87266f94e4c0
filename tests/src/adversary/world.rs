//! The world the adversary acts in: two owners' product namespaces, a tenant's namespace, two consumers'
//! namespaces, with the personas bound as a platform team binds them; and how each operation is carried out,
//! as the persona who would do it. The API server refusing an operation is an outcome like any other.

use apiportal_core::{APIKey, APIProduct, decision, rbac};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api,
    api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use super::{Ns, Op, SHOPS, Selector, TEAMS, TIERS, Verdict};
use crate::{
    Bridge, Cluster, Persona,
    stage::{authpolicy_resource, httproute_resource, planpolicy_resource, true_conditions},
};

pub struct World {
    pub cluster: &'static Cluster,
    pub shops: Vec<String>,
    pub tenant: String,
    pub teams: Vec<String>,
    /// The bridges running now (the first is the one started with the world).
    pub bridges: Vec<Bridge>,
    /// The arguments every bridge of this world runs with.
    pub bridge_args: Vec<String>,
}

/// Who owns shop `i`.
pub fn owner(shop: usize) -> Persona {
    [Persona::Owner, Persona::Owner2][shop]
}

/// Who consumes in team `i`.
pub fn consumer(team: usize) -> Persona {
    [Persona::Consumer, Persona::Consumer2][team]
}

pub fn product_name(i: usize) -> String {
    format!("p{i}")
}
pub fn route_name(i: usize) -> String {
    format!("r{i}")
}
pub fn policy_name(i: usize) -> String {
    format!("ap{i}")
}
pub fn key_name(i: usize) -> String {
    format!("k{i}")
}
/// Every route's hostname is its own, so each has an AuthConfig of its own at the gateway.
pub fn hostname(ns: &str, route: &str) -> String {
    format!("{route}.{ns}.adv.test")
}

impl World {
    /// A fresh world in new namespaces, with a bridge of its own.
    pub async fn new(cluster: &'static Cluster, bridge_args: Vec<String>) -> Self {
        cluster.ensure_installed();
        let run = format!("{:06x}", rand::random::<u32>() & 0xffffff);
        let shops: Vec<String> = (0..SHOPS).map(|i| format!("adv{run}-shop{i}")).collect();
        let tenant = format!("adv{run}-tenant");
        let teams: Vec<String> = (0..TEAMS).map(|i| format!("adv{run}-team{i}")).collect();
        let admin = cluster.client(Persona::Admin).await;
        for ns in shops.iter().chain(&teams).chain([&tenant]) {
            let object: k8s_openapi::api::core::v1::Namespace =
                serde_json::from_value(json!({"metadata": {"name": ns}})).expect("a Namespace");
            Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
                .create(&PostParams::default(), &object)
                .await
                .expect("create namespace");
        }
        for (i, shop) in shops.iter().enumerate() {
            cluster.bind(shop, rbac::OWNER_ROLE, owner(i)).await;
        }
        for (i, team) in teams.iter().enumerate() {
            cluster.bind(team, rbac::CONSUMER_ROLE, consumer(i)).await;
        }
        let args: Vec<&str> = bridge_args.iter().map(String::as_str).collect();
        let bridge = Bridge::start(cluster, &args).await;
        Self { cluster, shops, tenant, teams, bridges: vec![bridge], bridge_args }
    }

    pub fn namespace(&self, ns: Ns) -> &str {
        match ns {
            Ns::Shop(i) => &self.shops[i],
            Ns::Tenant => &self.tenant,
        }
    }

    /// Every namespace of the world.
    pub fn namespaces(&self) -> Vec<String> {
        self.shops.iter().chain(&self.teams).chain([&self.tenant]).cloned().collect()
    }

    async fn dynamic(&self, persona: Persona, ns: &str, ar: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.cluster.client(persona).await, ns, ar)
    }

    /// Carries out `op`; returns what happened, in words (never a key: operations never read one).
    pub async fn apply(&mut self, op: &Op) -> String {
        match self.try_apply(op).await {
            Ok(outcome) => outcome,
            Err(e) => format!("refused: {}", crate::api_error_message(&e)),
        }
    }

    async fn try_apply(&mut self, op: &Op) -> Result<String, kube::Error> {
        let c = self.cluster;
        match *op {
            Op::CreateProduct { shop, product, route, automatic, published, max_keys } => {
                let api: Api<APIProduct> = Api::namespaced(c.client(owner(shop)).await, &self.shops[shop]);
                let object: APIProduct = serde_json::from_value(json!({
                    "apiVersion": apiportal_core::API_VERSION, "kind": "APIProduct",
                    "metadata": {"name": product_name(product)},
                    "spec": {"displayName": format!("Product {product}"),
                             "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route_name(route)},
                             "approvalMode": if automatic { "automatic" } else { "manual" },
                             "publishStatus": if published { "Published" } else { "Draft" },
                             "maxKeysPerUser": max_keys}
                }))
                .expect("a product");
                api.create(&PostParams::default(), &object).await.map(|_| "created".into())
            }
            Op::SetApproval { shop, product, automatic } => {
                let api: Api<APIProduct> = Api::namespaced(c.client(owner(shop)).await, &self.shops[shop]);
                let patch = json!({"spec": {"approvalMode": if automatic { "automatic" } else { "manual" }}});
                api.patch(&product_name(product), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| "set".into())
            }
            Op::Publish { shop, product, published } => {
                let api: Api<APIProduct> = Api::namespaced(c.client(owner(shop)).await, &self.shops[shop]);
                let patch = json!({"spec": {"publishStatus": if published { "Published" } else { "Draft" }}});
                api.patch(&product_name(product), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| "set".into())
            }
            Op::DeleteProduct { shop, product } => {
                let api: Api<APIProduct> = Api::namespaced(c.client(owner(shop)).await, &self.shops[shop]);
                api.delete(&product_name(product), &DeleteParams::default()).await.map(|_| "deleted".into())
            }
            Op::Decide { team, key, verdict } => self.decide(team, key, verdict).await,
            Op::CreateRoute { ns, route } => {
                let namespace = self.namespace(ns).to_owned();
                let routes = self.dynamic(Persona::Admin, &namespace, &httproute_resource()).await;
                let name = route_name(route);
                let object: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                    "metadata": {"name": name, "labels": {"devportal.kuadrant.io/expose": "true"}},
                    "spec": {"parentRefs": [{"name": "external", "namespace": "gateway-system"}],
                             "hostnames": [hostname(&namespace, &name)],
                             "rules": [{"backendRefs": [{"name": name, "port": 8080}]}]}
                }))
                .expect("a route");
                routes.create(&PostParams::default(), &object).await?;
                set_route_accepted(&routes, &name, true).await.map(|_| "created, accepted".into())
            }
            Op::DeleteRoute { ns, route } => {
                let routes = self.dynamic(Persona::Admin, self.namespace(ns), &httproute_resource()).await;
                routes.delete(&route_name(route), &DeleteParams::default()).await.map(|_| "deleted".into())
            }
            Op::SetRouteAccepted { ns, route, accepted } => {
                let routes = self.dynamic(Persona::Admin, self.namespace(ns), &httproute_resource()).await;
                set_route_accepted(&routes, &route_name(route), accepted).await.map(|_| "set".into())
            }
            Op::ApplyPolicy { ns, policy, route, selector, all_namespaces, enforced } => {
                let namespace = self.namespace(ns).to_owned();
                let policies = self.dynamic(Persona::Admin, &namespace, &authpolicy_resource()).await;
                let name = policy_name(policy);
                let object = json!({
                    "apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy", "metadata": {"name": name},
                    "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route_name(route)},
                             "rules": {"authentication": {"api-key": {
                                 "apiKey": {"selector": self.selector(&namespace, selector), "allNamespaces": all_namespaces},
                                 "credentials": {"authorizationHeader": {"prefix": "APIKEY"}}}}}}
                });
                policies.patch(&name, &PatchParams::apply("adversary").force(), &Patch::Apply(&object)).await?;
                set_policy_enforced(&policies, &name, enforced).await.map(|_| "applied".into())
            }
            Op::SetPolicyEnforced { ns, policy, enforced } => {
                let policies = self.dynamic(Persona::Admin, self.namespace(ns), &authpolicy_resource()).await;
                set_policy_enforced(&policies, &policy_name(policy), enforced).await.map(|_| "set".into())
            }
            Op::DeletePolicy { ns, policy } => {
                let policies = self.dynamic(Persona::Admin, self.namespace(ns), &authpolicy_resource()).await;
                policies.delete(&policy_name(policy), &DeleteParams::default()).await.map(|_| "deleted".into())
            }
            Op::ApplyPlans { ns, route, tiers } => {
                let plans = self.dynamic(Persona::Admin, self.namespace(ns), &planpolicy_resource()).await;
                let name = format!("{}-plans", route_name(route));
                let plans_json: Vec<Value> = TIERS[..tiers]
                    .iter()
                    .map(|tier| json!({"tier": tier, "limits": {"daily": 100},
                        "predicate": format!("auth.identity.metadata.annotations[\"secret.kuadrant.io/plan-id\"] == \"{tier}\"")}))
                    .collect();
                let object = json!({"apiVersion": "extensions.kuadrant.io/v1alpha1", "kind": "PlanPolicy", "metadata": {"name": name},
                    "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route_name(route)}, "plans": plans_json}});
                plans
                    .patch(&name, &PatchParams::apply("adversary").force(), &Patch::Apply(&object))
                    .await
                    .map(|_| "applied".into())
            }
            Op::Request { team, key, shop, product, tier, expires_in } => {
                let api: Api<APIKey> = Api::namespaced(c.client(consumer(team)).await, &self.teams[team]);
                let expires = expires_in.map(|s| Time(Timestamp::now() + jiff::SignedDuration::from_secs(s as i64)));
                let object: APIKey = serde_json::from_value(json!({
                    "apiVersion": apiportal_core::API_VERSION, "kind": "APIKey", "metadata": {"name": key_name(key)},
                    "spec": {"apiProductRef": {"name": product_name(product), "namespace": self.shops[shop]},
                             "planTier": TIERS[tier], "useCase": "adversary",
                             "requestedBy": {"userId": consumer(team).username()},
                             "expiresAt": expires}
                }))
                .expect("a request");
                match api.create(&PostParams::default(), &object).await {
                    Ok(_) => Ok("created".into()),
                    // Asking again after a final decision: the consumer deletes the old request and asks anew.
                    Err(kube::Error::Api(e)) if e.code == 409 => {
                        let old = api.get(&key_name(key)).await?;
                        if !old.phase().is_final() {
                            return Ok(format!("already asked ({})", old.phase()));
                        }
                        api.delete(&key_name(key), &DeleteParams::default()).await?;
                        match api.create(&PostParams::default(), &object).await {
                            Ok(_) => Ok("asked again".into()),
                            Err(kube::Error::Api(e)) if e.code == 409 => Ok("the old request is still going".into()),
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
            Op::Rotate { team, key, grace_seconds } => {
                let api: Api<APIKey> = Api::namespaced(c.client(consumer(team)).await, &self.teams[team]);
                let current = api.get(&key_name(key)).await?;
                let generation = current.status.and_then(|s| s.issued).map(|i| i.generation).unwrap_or(0);
                let grace = apiportal_core::duration::format(std::time::Duration::from_secs(grace_seconds as u64));
                let patch =
                    decision::rotation_patch(generation + 1, &consumer(team).username(), Timestamp::now(), &grace);
                api.patch_status(&key_name(key), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| format!("asked for value {}", generation + 1))
            }
            Op::ChangePlan { team, key, tier } => {
                let api: Api<APIKey> = Api::namespaced(c.client(consumer(team)).await, &self.teams[team]);
                let patch = json!({"status": {"planChange": {"tier": TIERS[tier], "requestedBy": consumer(team).username(),
                    "requestedAt": Time(Timestamp::now())}}});
                api.patch_status(&key_name(key), &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| "asked".into())
            }
            Op::DeleteKey { team, key } => {
                let api: Api<APIKey> = Api::namespaced(c.client(consumer(team)).await, &self.teams[team]);
                api.delete(&key_name(key), &DeleteParams::default()).await.map(|_| "deleted".into())
            }
            Op::KillBridge => {
                let mut bridge = self.bridges.remove(0);
                bridge.kill9();
                if self.bridges.is_empty() {
                    self.bridges.push(self.start_bridge().await);
                    Ok("killed; started another".into())
                } else {
                    Ok("killed; the other replica goes on".into())
                }
            }
            Op::StartReplica => {
                if self.bridges.len() >= 2 {
                    return Ok("two replicas run already".into());
                }
                let replica = self.start_bridge().await;
                self.bridges.push(replica);
                Ok("started".into())
            }
            Op::RestartApiServer => {
                let cluster = self.cluster;
                tokio::task::spawn_blocking(move || cluster.restart_apiserver(2)).await.expect("restart");
                Ok("restarted".into())
            }
        }
    }

    async fn start_bridge(&self) -> Bridge {
        let args: Vec<&str> = self.bridge_args.iter().map(String::as_str).collect();
        Bridge::start(self.cluster, &args).await
    }

    /// The owner of the key's product decides (the product named by the key, whichever shop that is).
    async fn decide(&self, team: usize, key: usize, verdict: Verdict) -> Result<String, kube::Error> {
        let admin: Api<APIKey> = Api::namespaced(self.cluster.client(Persona::Admin).await, &self.teams[team]);
        let Some(current) = admin.get_opt(&key_name(key)).await? else { return Ok("no such key".into()) };
        let shop = self.shops.iter().position(|s| *s == current.product_namespace()).unwrap_or(0);
        let deciding = owner(shop);
        let api: Api<APIKey> = Api::namespaced(self.cluster.client(deciding).await, &self.teams[team]);
        let (phase, reason) = match verdict {
            Verdict::Approve | Verdict::Resume => (apiportal_core::KeyPhase::Approved, None),
            Verdict::Reject => (apiportal_core::KeyPhase::Rejected, Some("the adversary says no")),
            Verdict::Revoke => (apiportal_core::KeyPhase::Revoked, Some("the adversary revokes")),
            Verdict::Suspend => (apiportal_core::KeyPhase::Suspended, Some("the adversary suspends")),
        };
        let patch = decision::decision_patch(phase, &deciding.username(), Timestamp::now(), reason);
        api.patch_status(&key_name(key), &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| "decided".into())
    }

    fn selector(&self, namespace: &str, selector: Selector) -> Value {
        let scoped = |ns: &str, product: usize| json!({apiportal_core::labels::APIPRODUCT: product_name(product), apiportal_core::labels::APIPRODUCT_NAMESPACE: ns});
        match selector {
            Selector::Own(p) => json!({"matchLabels": scoped(namespace, p)}),
            Selector::Copied(shop, p) => json!({"matchLabels": scoped(&self.shops[shop], p)}),
            Selector::OwnWithLabel(p) => {
                let mut labels = scoped(namespace, p);
                labels["app"] = json!("payments");
                json!({"matchLabels": labels})
            }
            Selector::Legacy => json!({"matchLabels": {"app": "payments"}}),
            Selector::Everything => json!({}),
            Selector::Expressions(p) => json!({"matchExpressions": [
                {"key": apiportal_core::labels::APIPRODUCT, "operator": "In", "values": [product_name(p)]},
                {"key": apiportal_core::labels::APIPRODUCT_NAMESPACE, "operator": "In", "values": [namespace]}]}),
        }
    }
}

async fn set_route_accepted(routes: &Api<DynamicObject>, name: &str, accepted: bool) -> Result<(), kube::Error> {
    let conditions = if accepted {
        true_conditions(&["Accepted"])
    } else {
        json!([{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners", "message": "no", "lastTransitionTime": "2026-11-25T00:00:00Z"}])
    };
    let parent = json!({"parentRef": {"name": "external", "namespace": "gateway-system"}, "controllerName": "example.com/gateway", "conditions": conditions});
    routes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"parents": [parent]}})))
        .await
        .map(|_| ())
}

async fn set_policy_enforced(policies: &Api<DynamicObject>, name: &str, enforced: bool) -> Result<(), kube::Error> {
    let conditions = if enforced {
        true_conditions(&["Accepted", "Enforced"])
    } else {
        json!([{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "ok", "lastTransitionTime": "2026-11-25T00:00:00Z"},
               {"type": "Enforced", "status": "False", "reason": "Unknown", "message": "not yet", "lastTransitionTime": "2026-11-25T00:00:00Z"}])
    };
    policies
        .patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": {"conditions": conditions}})))
        .await
        .map(|_| ())
}
