//! A marketplace for a test: an owner namespace with an HTTPRoute, its AuthPolicy and PlanPolicy (with the
//! statuses a gateway controller and Kuadrant would write, since neither runs here), and a consumer namespace,
//! with the personas bound as a platform team would bind them.

use apiportal_core::rbac;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::{Cluster, Persona};

pub struct Stage {
    /// The owner's namespace (`owner` owns it).
    pub shop: String,
    /// The consumer's namespace (alice's).
    pub team: String,
    /// Who owns the shop: bob, unless the stage was made with `owned_by`.
    pub owner: Persona,
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn httproute_resource() -> ApiResource {
    resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
}
pub fn authpolicy_resource() -> ApiResource {
    resource("kuadrant.io", "v1", "AuthPolicy", "authpolicies")
}
pub fn planpolicy_resource() -> ApiResource {
    resource("extensions.kuadrant.io", "v1alpha1", "PlanPolicy", "planpolicies")
}

/// Conditions a controller reports as all true.
pub fn true_conditions(types: &[&str]) -> Value {
    Value::Array(
        types
            .iter()
            .map(|t| json!({"type": t, "status": "True", "reason": t, "message": "ok", "lastTransitionTime": "2026-11-25T00:00:00Z"}))
            .collect(),
    )
}

impl Stage {
    /// The hostname of route `route` of this stage: every route has its own, as the gateway needs.
    pub fn host(&self, route: &str) -> String {
        format!("{route}.{}.example.com", self.shop)
    }

    pub async fn new(cluster: &Cluster) -> Self {
        Self::owned_by(cluster, Persona::Owner).await
    }

    /// A stage whose shop `owner` owns (and nobody else): another team's products, for tests about who sees what.
    pub async fn owned_by(cluster: &Cluster, owner: Persona) -> Self {
        let shop = cluster.namespace("shop").await;
        let team = cluster.namespace("team").await;
        Self::with_namespaces(cluster, shop, team, owner).await
    }

    /// A stage in namespaces of the given names (created here), e.g. the same ones in two clusters.
    pub async fn named(cluster: &Cluster, shop: &str, team: &str) -> Self {
        for name in [shop, team] {
            let ns: k8s_openapi::api::core::v1::Namespace =
                serde_json::from_value(json!({"metadata": {"name": name}})).expect("a Namespace");
            Api::<k8s_openapi::api::core::v1::Namespace>::all(cluster.client(Persona::Admin).await)
                .create(&PostParams::default(), &ns)
                .await
                .expect("create namespace");
        }
        Self::with_namespaces(cluster, shop.to_owned(), team.to_owned(), Persona::Owner).await
    }

    async fn with_namespaces(cluster: &Cluster, shop: String, team: String, owner: Persona) -> Self {
        cluster.ensure_installed();
        cluster.bind(&shop, rbac::OWNER_ROLE, owner).await;
        cluster.bind(&team, rbac::CONSUMER_ROLE, Persona::Consumer).await;
        let stage = Self { shop, team, owner };
        stage.route(cluster, "toys", &[&stage.host("toys")]).await;
        stage.api_key_policy(cluster, "toys", "toys").await;
        stage
            .plans(
                cluster,
                "toys",
                json!([{"tier": "gold", "limits": {"daily": 100}}, {"tier": "bronze", "limits": {"daily": 10}}]),
            )
            .await;
        stage
    }

    /// The owner creates and publishes a product over the stage's route with the plugin; returns once the
    /// bridge has discovered its plans (a bridge must be running).
    pub async fn published_product(
        &self,
        cluster: &Cluster,
        name: &str,
        approval: &str,
    ) -> Api<apiportal_core::APIProduct> {
        let out = self
            .create_product(
                cluster,
                name,
                &["--approval", approval, "--display-name", "Toys API", "--team", "toys-team", "--publish"],
            )
            .await;
        assert!(out.success(), "{}", out.stderr);
        self.wait_for_plans(cluster, name).await;
        Api::namespaced(cluster.client(Persona::Admin).await, &self.shop)
    }

    /// Waits until the bridge has discovered the plans of the shop's product `name`, so it takes requests; returns
    /// the product as it then is.
    pub async fn wait_for_plans(&self, cluster: &Cluster, name: &str) -> apiportal_core::APIProduct {
        self.wait_for_product(cluster, name, "the product's plans", |p| !p.plans().is_empty()).await
    }

    /// Waits until the bridge has written `what` (`discovered`) into the status of the shop's product `name`.
    /// Each policy reaches the bridge's cache on its own watch, so plans may be discovered before the AuthPolicy.
    pub async fn wait_for_product(
        &self,
        cluster: &Cluster,
        name: &str,
        what: &str,
        discovered: impl Fn(&apiportal_core::APIProduct) -> bool,
    ) -> apiportal_core::APIProduct {
        let api: Api<apiportal_core::APIProduct> = Api::namespaced(cluster.client(Persona::Admin).await, &self.shop);
        crate::eventually(30, &format!("the bridge to discover {what}"), || async {
            api.get(name).await.ok().filter(|p| discovered(p))
        })
        .await
    }

    /// `kubectl apiportal product create NAME --route toys` in the shop, as its owner, with `flags`.
    pub async fn create_product(&self, cluster: &Cluster, name: &str, flags: &[&str]) -> crate::Output {
        let mut args = vec!["-n", &self.shop, "product", "create", name, "--route", "toys"];
        args.extend_from_slice(flags);
        cluster.apiportal(self.owner, &args).await
    }

    /// `kubectl apiportal request SHOP/PRODUCT --plan PLAN` in the team's namespace, as the consumer.
    pub async fn request(&self, cluster: &Cluster, product: &str, plan: &str) {
        let product = format!("{}/{product}", self.shop);
        let args = ["-n", &self.team, "request", &product, "--plan", plan, "--use-case", "tests"];
        let out = cluster.apiportal(Persona::Consumer, &args).await;
        assert!(out.success(), "{}", out.stderr);
    }

    async fn create(&self, cluster: &Cluster, ar: &ApiResource, object: Value) -> DynamicObject {
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(Persona::Admin).await, &self.shop, ar);
        let object: DynamicObject = serde_json::from_value(object).expect("a valid object");
        api.create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("create {:?}: {e}", object.metadata.name))
    }

    /// Sets an object's status as its controller would.
    pub async fn set_status(&self, cluster: &Cluster, ar: &ApiResource, name: &str, status: Value) {
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(Persona::Admin).await, &self.shop, ar);
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
            .await
            .expect("patch status");
    }

    /// An HTTPRoute accepted by its gateway.
    pub async fn route(&self, cluster: &Cluster, name: &str, hostnames: &[&str]) {
        let ar = httproute_resource();
        self.create(
            cluster,
            &ar,
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": name, "labels": {"devportal.kuadrant.io/expose": "true"}},
                "spec": {"parentRefs": [{"name": "external", "namespace": "gateway-system"}], "hostnames": hostnames,
                         "rules": [{"backendRefs": [{"name": name, "port": 8080}]}]}
            }),
        )
        .await;
        let parent = json!({"parentRef": {"name": "external", "namespace": "gateway-system"}, "controllerName": "example.com/gateway", "conditions": true_conditions(&["Accepted"])});
        self.set_status(cluster, &ar, name, json!({"parents": [parent]})).await;
    }

    /// An enforced API-key AuthPolicy `<route>-keys` on the route, product-scoped to product `product` of this
    /// stage's namespace: keys sent as `APIKEY <key>`.
    pub async fn api_key_policy(&self, cluster: &Cluster, route: &str, product: &str) {
        self.api_key_policy_taking(cluster, route, product, json!({"authorizationHeader": {"prefix": "APIKEY"}})).await;
    }

    /// Like `api_key_policy`, with keys sent where `credentials` (an AuthPolicy rule's `credentials`) says.
    pub async fn api_key_policy_taking(&self, cluster: &Cluster, route: &str, product: &str, credentials: Value) {
        let policy = apiportal_core::issuance::product_auth_policy(&self.shop, route, product, "APIKEY");
        let selector = policy["spec"]["rules"]["authentication"]["api-key"]["apiKey"]["selector"].clone();
        self.auth_policy_taking(cluster, &format!("{route}-keys"), route, selector, credentials, true).await;
    }

    /// An API-key AuthPolicy `name` on route `route` selecting keys with `selector` (a LabelSelector), keys sent as
    /// `APIKEY <key>`, Accepted, and Enforced when `enforced`; created, or changed if it exists.
    pub async fn auth_policy(&self, cluster: &Cluster, name: &str, route: &str, selector: Value, enforced: bool) {
        let credentials = json!({"authorizationHeader": {"prefix": "APIKEY"}});
        self.auth_policy_taking(cluster, name, route, selector, credentials, enforced).await;
    }

    /// Like `auth_policy`, with keys sent where `credentials` says.
    pub async fn auth_policy_taking(
        &self,
        cluster: &Cluster,
        name: &str,
        route: &str,
        selector: Value,
        credentials: Value,
        enforced: bool,
    ) {
        let ar = authpolicy_resource();
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(Persona::Admin).await, &self.shop, &ar);
        let object = json!({
            "apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy", "metadata": {"name": name},
            "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route},
                     "rules": {"authentication": {"api-key": {
                         "apiKey": {"selector": selector, "allNamespaces": false},
                         "credentials": credentials}}}}
        });
        api.patch(name, &PatchParams::apply("test-platform").force(), &Patch::Apply(&object))
            .await
            .expect("apply AuthPolicy");
        let conditions = if enforced {
            true_conditions(&["Accepted", "Enforced"])
        } else {
            json!([{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "ok", "lastTransitionTime": "2026-11-25T00:00:00Z"},
                   {"type": "Enforced", "status": "False", "reason": "Unknown", "message": "not yet", "lastTransitionTime": "2026-11-25T00:00:00Z"}])
        };
        self.set_status(cluster, &ar, name, json!({"conditions": conditions})).await;
    }

    /// An enforced AuthPolicy `<route>-jwt` on the route that takes JWTs from the OpenID Connect issuer `issuer_url`.
    pub async fn jwt_policy(&self, cluster: &Cluster, route: &str, issuer_url: &str) {
        let ar = authpolicy_resource();
        let name = format!("{route}-jwt");
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(Persona::Admin).await, &self.shop, &ar);
        let object = json!({
            "apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy", "metadata": {"name": name},
            "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route},
                     "rules": {"authentication": {"sso": {"jwt": {"issuerUrl": issuer_url}}}}}
        });
        api.patch(&name, &PatchParams::apply("test-platform").force(), &Patch::Apply(&object))
            .await
            .expect("apply AuthPolicy");
        self.set_status(cluster, &ar, &name, json!({"conditions": true_conditions(&["Accepted", "Enforced"])})).await;
    }

    /// An enforced API-key AuthPolicy `name` in this stage's namespace on Gateway `gateway` (in the same
    /// namespace), selecting keys with `selector`.
    pub async fn gateway_auth_policy(&self, cluster: &Cluster, name: &str, gateway: &str, selector: Value) {
        let ar = authpolicy_resource();
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(Persona::Admin).await, &self.shop, &ar);
        let object = json!({
            "apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy", "metadata": {"name": name},
            "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway},
                     "rules": {"authentication": {"api-key": {"apiKey": {"selector": selector}}}}}
        });
        api.patch(name, &PatchParams::apply("test-platform").force(), &Patch::Apply(&object))
            .await
            .expect("apply AuthPolicy");
        self.set_status(cluster, &ar, name, json!({"conditions": true_conditions(&["Accepted", "Enforced"])})).await;
    }

    /// Sets the route's status as if each of `gateways` (namespace, name) accepted it.
    pub async fn accept_route(&self, cluster: &Cluster, route: &str, gateways: &[(&str, &str)]) {
        let parents: Vec<Value> = gateways
            .iter()
            .map(|(ns, name)| json!({"parentRef": {"name": name, "namespace": ns}, "controllerName": "example.com/gateway", "conditions": true_conditions(&["Accepted"])}))
            .collect();
        self.set_status(cluster, &httproute_resource(), route, json!({"parents": parents})).await;
    }

    /// A PlanPolicy on the route with the given plans (`[{tier, limits}]`); predicates as Kuadrant documents.
    pub async fn plans(&self, cluster: &Cluster, route: &str, plans: Value) {
        let ar = planpolicy_resource();
        let plans: Vec<Value> = plans
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let tier = p["tier"].as_str().unwrap();
                json!({"tier": tier, "limits": p["limits"], "predicate": format!("has(auth.identity) && auth.identity.metadata.annotations[\"secret.kuadrant.io/plan-id\"] == \"{tier}\"")})
            })
            .collect();
        let name = format!("{route}-plans");
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(Persona::Admin).await, &self.shop, &ar);
        let object = json!({"apiVersion": "extensions.kuadrant.io/v1alpha1", "kind": "PlanPolicy", "metadata": {"name": name},
            "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route}, "plans": plans}});
        api.patch(&name, &PatchParams::apply("test-platform").force(), &Patch::Apply(&object))
            .await
            .expect("apply PlanPolicy");
    }
}
