//! The gateway, for tests that ask it rather than the API server whether a key opens a route.
//!
//! Kuadrant's real Authorino (built by `cluster/build-tools.sh`, started by `cluster/cluster.sh start-authorino`)
//! checks every key, through its raw HTTP `/check` interface. This module plays the part of Kuadrant's operator:
//! from each HTTPRoute and the AuthPolicy in force on it, it derives the AuthConfig Authorino reads
//! (`auth_config`). The derivation is written here from Kuadrant's documented behaviour, independently of the
//! bridge's code, so the gateway judges the bridge instead of agreeing with it. It is deliberately generous to an
//! attacker: every AuthPolicy counts, whether or not anything reported it Accepted or Enforced, and every route
//! counts whether or not a Gateway accepted it, because a controller may report those at any moment.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    Cluster, HttpClient, Persona, eventually, http_client, run_async,
    stage::{authpolicy_resource, httproute_resource},
    within,
};

/// Where Kuadrant's operator writes the AuthConfigs it derives: its own namespace, which is also where the
/// bridge's enforcement Secrets live (an AuthConfig without `allNamespaces` reads Secrets of its own namespace).
pub const AUTHCONFIG_NAMESPACE: &str = crate::fixtures::ENFORCEMENT_NAMESPACE;
/// Marks the AuthConfigs this module derived, so a sync removes exactly those that no longer apply.
const DERIVED_LABEL: &str = "apiportal.test/derived-from-route";

pub fn authconfig_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("authorino.kuadrant.io", "v1beta3", "AuthConfig"),
        "authconfigs",
    )
}

/// How a route's AuthConfig wants the key sent (Authorino's `credentials`; `Authorization: Bearer` when unset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    AuthorizationHeader { prefix: String },
    CustomHeader { name: String },
    QueryString { name: String },
    Cookie { name: String },
}

impl Credentials {
    fn from_spec(spec: &Value) -> Self {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        if let Some(h) = spec.get("customHeader") {
            Self::CustomHeader { name: text(&h["name"]) }
        } else if let Some(q) = spec.get("queryString") {
            Self::QueryString { name: text(&q["name"]) }
        } else if let Some(c) = spec.get("cookie") {
            Self::Cookie { name: text(&c["name"]) }
        } else {
            let prefix = spec.pointer("/authorizationHeader/prefix").and_then(Value::as_str).unwrap_or("");
            Self::AuthorizationHeader { prefix: if prefix.is_empty() { "Bearer".into() } else { prefix.into() } }
        }
    }
}

/// One route as the gateway serves it: its hosts and, when an AuthPolicy applies, the AuthConfig derived for it.
#[derive(Clone, Debug)]
pub struct GatewayRoute {
    pub namespace: String,
    pub name: String,
    pub hosts: Vec<String>,
    /// `namespace/name` of the AuthPolicy in force.
    pub policy: String,
    /// The apiKey rules of that policy: (rule name, selector, allNamespaces, where the key goes).
    pub api_key_rules: Vec<ApiKeyRule>,
    pub auth_config: Value,
}

#[derive(Clone, Debug)]
pub struct ApiKeyRule {
    pub name: String,
    pub selector: Value,
    pub all_namespaces: bool,
    pub credentials: Credentials,
}

impl GatewayRoute {
    /// Whether this route's AuthConfig selects a Secret carrying `labels` (Kubernetes label-selector semantics,
    /// written here again so that the judge shares no code with the judged).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.api_key_rules.iter().any(|rule| selector_matches(&rule.selector, labels))
    }
}

/// Kubernetes label-selector semantics: every `matchLabels` pair and every `matchExpressions` requirement holds.
pub fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector["matchLabels"].as_object().into_iter().flatten();
    let labels_hold = match_labels.into_iter().all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let expressions = selector["matchExpressions"].as_array().into_iter().flatten();
    let expressions_hold = expressions.into_iter().all(|e| {
        let value = e["key"].as_str().and_then(|k| labels.get(k));
        let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        match e["operator"].as_str() {
            Some("In") => value.is_some_and(|v| values.contains(&v.as_str())),
            Some("NotIn") => value.is_none_or(|v| !values.contains(&v.as_str())),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            _ => false,
        }
    });
    labels_hold && expressions_hold
}

fn id(object: &Value) -> (String, String) {
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    (text("/metadata/namespace"), text("/metadata/name"))
}

/// The rules of an AuthPolicy (Kuadrant `kuadrant.io/v1`) that reach a route: `overrides.rules`, `defaults.rules`
/// or the bare `rules` (implicit defaults).
fn policy_rules(policy: &Value) -> Option<&Value> {
    let spec = &policy["spec"];
    [spec.pointer("/overrides/rules"), spec.pointer("/defaults/rules"), spec.get("rules")].into_iter().flatten().next()
}

fn is_overrides(policy: &Value) -> bool {
    policy["spec"].get("overrides").is_some()
}

/// The AuthPolicy in force on route `route`, as Kuadrant resolves policy attachment: a Gateway's `overrides`, else
/// the route's own policy, else a Gateway's defaults; among several at one level the oldest wins (then the
/// name). A Gateway counts when the route names it as a parent (accepted or not: generous to an attacker).
pub fn effective_policy<'a>(route: &Value, policies: &'a [Value]) -> Option<&'a Value> {
    let (route_ns, route_name) = id(route);
    let targets = |p: &Value, kind: &str, ns: &str, name: &str| {
        let t = &p["spec"]["targetRef"];
        t["group"] == "gateway.networking.k8s.io" && t["kind"] == kind && t["name"] == name && id(p).0 == ns
    };
    let parents: Vec<(String, String)> = route["spec"]["parentRefs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["kind"].as_str().unwrap_or("Gateway") == "Gateway")
        .map(|p| {
            let ns = p["namespace"].as_str().unwrap_or(&route_ns).to_owned();
            (ns, p["name"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    let on_gateway = |p: &&Value| parents.iter().any(|(ns, gw)| targets(p, "Gateway", ns, gw));
    let oldest = |candidates: Vec<&'a Value>| {
        candidates.into_iter().min_by_key(|p| {
            (p.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or("").to_owned(), id(p))
        })
    };
    oldest(policies.iter().filter(on_gateway).filter(|p| is_overrides(p)).collect())
        .or_else(|| oldest(policies.iter().filter(|p| targets(p, "HTTPRoute", &route_ns, &route_name)).collect()))
        .or_else(|| oldest(policies.iter().filter(on_gateway).filter(|p| !is_overrides(p)).collect()))
}

/// The AuthConfig Kuadrant's operator derives for `route` under `policy`: the route's hostnames as its hosts, and
/// each of the policy's authentication rules with its `apiKey` selector, `allNamespaces` and `credentials`
/// copied as they are (Kuadrant's AuthPolicy embeds Authorino's own AuthConfig rules). Rules that are not API
/// keys (JWT, ...) are left out: they accept no API key, and their issuers are not reachable here. The
/// name carries a digest of the spec, so a changed AuthConfig is a new one and "Authorino has it" is observable.
pub fn auth_config(route: &Value, policy: &Value) -> Option<GatewayRoute> {
    let (namespace, name) = id(route);
    let hosts: Vec<String> = route["spec"]["hostnames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str().map(str::to_owned))
        .collect();
    if hosts.is_empty() {
        return None;
    }
    let mut authentication = serde_json::Map::new();
    let mut api_key_rules = Vec::new();
    for (rule, spec) in policy_rules(policy)?.get("authentication")?.as_object()? {
        let Some(api_key) = spec.get("apiKey") else { continue };
        let credentials = spec.get("credentials").cloned().unwrap_or(json!({}));
        let selector = api_key.get("selector").cloned().unwrap_or(json!({}));
        let all_namespaces = api_key["allNamespaces"].as_bool().unwrap_or(false);
        api_key_rules.push(ApiKeyRule {
            name: rule.clone(),
            selector: selector.clone(),
            all_namespaces,
            credentials: Credentials::from_spec(&credentials),
        });
        authentication.insert(
            rule.clone(),
            json!({"apiKey": {"selector": selector, "allNamespaces": all_namespaces}, "credentials": credentials}),
        );
    }
    if api_key_rules.is_empty() {
        return None;
    }
    let spec = json!({"hosts": hosts, "authentication": authentication});
    let digest = hex::encode(&Sha256::digest(spec.to_string().as_bytes())[..5]);
    let auth_config = json!({
        "apiVersion": "authorino.kuadrant.io/v1beta3", "kind": "AuthConfig",
        "metadata": {"name": format!("route-{namespace}-{name}-{digest}"), "namespace": AUTHCONFIG_NAMESPACE,
                     "labels": {DERIVED_LABEL: "true"}},
        "spec": spec,
    });
    let (pns, pname) = id(policy);
    Some(GatewayRoute { namespace, name, hosts, policy: format!("{pns}/{pname}"), api_key_rules, auth_config })
}

/// Authorino, and the AuthConfigs derived for it from the cluster's routes and policies.
pub struct Gateway {
    cluster: &'static Cluster,
    http: HttpClient,
}

/// Every route the gateway serves, as of the last `sync`.
#[derive(Clone, Debug, Default)]
pub struct GatewayRoutes(pub Vec<GatewayRoute>);

impl GatewayRoutes {
    pub fn route(&self, namespace: &str, name: &str) -> Option<&GatewayRoute> {
        self.0.iter().find(|r| r.namespace == namespace && r.name == name)
    }
}

/// One Authorino per cluster, started by the first test that asks (tests run in parallel): its check URL.
static STARTED: tokio::sync::Mutex<Vec<(std::path::PathBuf, String)>> = tokio::sync::Mutex::const_new(Vec::new());

/// Runs `cluster.sh <command> DIR` for Authorino and returns the check URL it wrote last to DIR/env.
async fn run_authorino(dir: &std::path::Path, command: &str) -> String {
    let mut cmd = tokio::process::Command::new(crate::repo_root().join("tests/cluster/cluster.sh"));
    cmd.arg(command).arg(dir);
    let out = run_async(cmd).await;
    assert!(out.success(), "{command} failed: {}", out.stderr);
    let env = std::fs::read_to_string(dir.join("env")).expect("the cluster's env file");
    env.lines().filter_map(|l| l.strip_prefix("AUTHORINO_URL=")).next_back().expect("AUTHORINO_URL").to_owned()
}

impl Gateway {
    /// The gateway of `cluster`, starting Authorino on first use.
    pub async fn of(cluster: &'static Cluster) -> Self {
        let dir = cluster.dir.clone();
        let mut started = STARTED.lock().await;
        let url = match started.iter().find(|(d, _)| *d == dir) {
            Some((_, url)) => url.clone(),
            None => {
                let url = run_authorino(&dir, "start-authorino").await;
                started.push((dir.clone(), url.clone()));
                url
            }
        };
        drop(started);
        let admin = cluster.client(Persona::Admin).await;
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": AUTHCONFIG_NAMESPACE}})).unwrap();
        match Api::<Namespace>::all(admin).create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("create namespace {AUTHCONFIG_NAMESPACE}: {e}"),
        }
        Self { cluster, http: http_client(&url, &cluster.ca_file()) }
    }

    /// Replaces Authorino with a fresh process (empty caches, everything read again from the API server), as an
    /// operator restarting a gateway whose index went stale would, and returns once the new one serves every host
    /// of `routes` (a host it has not linked yet answers 404).
    pub async fn restart_authorino(&mut self, routes: &GatewayRoutes) {
        let dir = self.cluster.dir.clone();
        let mut started = STARTED.lock().await;
        let url = run_authorino(&dir, "restart-authorino").await;
        started.retain(|(d, _)| *d != dir);
        started.push((dir, url.clone()));
        drop(started);
        self.http = http_client(&url, &self.cluster.ca_file());
        self.await_hosts(routes).await;
    }

    /// Waits until Authorino serves every host of `routes` (a host it has not linked yet answers 404).
    pub async fn await_hosts(&self, routes: &GatewayRoutes) {
        let probe = Credentials::AuthorizationHeader { prefix: "Bearer".into() };
        for host in routes.0.iter().flat_map(|r| &r.hosts) {
            eventually(60, &format!("the new Authorino to serve {host}"), || async {
                (self.check_with(host, "probe", &probe).await != 404).then_some(())
            })
            .await;
        }
    }

    /// Plays Kuadrant's operator once: derives the AuthConfig of every route from the routes and AuthPolicies in
    /// the cluster now, applies the new ones, deletes the ones that no longer apply, and returns once Authorino has
    /// linked every derived AuthConfig to all of its hosts (so a check made next is judged by exactly these).
    pub async fn sync(&self) -> GatewayRoutes {
        self.try_sync(60).await.unwrap_or_else(|why| panic!("{why}"))
    }

    /// Like `sync`, saying so when Authorino has not taken the change up within `seconds`.
    pub async fn try_sync(&self, seconds: u64) -> Result<GatewayRoutes, String> {
        // One sync at a time in this process: tests run in parallel, and a sync that listed the routes before
        // another test changed them would delete the AuthConfig that test just derived.
        static SYNC: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = SYNC.lock().await;
        let admin = self.cluster.client(Persona::Admin).await;
        let list = |ar: ApiResource| {
            let api: Api<DynamicObject> = Api::all_with(admin.clone(), &ar);
            async move {
                let items = api.list(&ListParams::default()).await.expect("list").items;
                items.into_iter().map(|o| serde_json::to_value(o).expect("JSON")).collect::<Vec<Value>>()
            }
        };
        let (routes, policies) = (list(httproute_resource()).await, list(authpolicy_resource()).await);
        let derived: Vec<GatewayRoute> = routes
            .iter()
            .filter_map(|route| effective_policy(route, &policies).and_then(|policy| auth_config(route, policy)))
            .collect();
        let configs: Api<DynamicObject> =
            Api::namespaced_with(admin.clone(), AUTHCONFIG_NAMESPACE, &authconfig_resource());
        let wanted: BTreeSet<String> = derived.iter().map(|r| name_of(&r.auth_config)).collect();
        let existing: BTreeSet<String> = configs
            .list(&ListParams::default().labels(DERIVED_LABEL))
            .await
            .expect("list AuthConfigs")
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        // Old ones go first: a host belongs to one AuthConfig at a time, and the new one takes it over. Names
        // carry a digest of the spec, so an unchanged AuthConfig is left as it is.
        for old in existing.difference(&wanted) {
            let _ = configs.delete(old, &DeleteParams::default()).await;
        }
        for route in derived.iter().filter(|r| !existing.contains(&name_of(&r.auth_config))) {
            let object: DynamicObject = serde_json::from_value(route.auth_config.clone()).expect("an AuthConfig");
            match configs.create(&PostParams::default(), &object).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => panic!("create AuthConfig: {e}"),
            }
        }
        for route in derived.iter().filter(|r| !existing.contains(&name_of(&r.auth_config))) {
            let name = name_of(&route.auth_config);
            let hosts: BTreeSet<&str> = route.hosts.iter().map(String::as_str).collect();
            within(seconds, || async {
                let config = configs.get_opt(&name).await.ok().flatten()?;
                let ready = config.data["status"]["summary"]["hostsReady"].as_array().cloned().unwrap_or_default();
                let ready: BTreeSet<&str> = ready.iter().filter_map(Value::as_str).collect();
                (config.data["status"]["summary"]["ready"] == true && hosts.iter().all(|h| ready.contains(h)))
                    .then_some(())
            })
            .await
            .ok_or_else(|| format!("Authorino did not link AuthConfig {name} to its hosts within {seconds}s"))?;
        }
        if existing.difference(&wanted).next().is_some() {
            // A deleted AuthConfig's hosts answer 404 once Authorino has dropped it.
            let gone: Vec<String> = routes_hosts_without_config(&routes, &derived);
            for host in gone {
                within(seconds, || async {
                    (self
                        .check_with(&host, "probe", &Credentials::AuthorizationHeader { prefix: "Bearer".into() })
                        .await
                        == 404)
                        .then_some(())
                })
                .await
                .ok_or_else(|| format!("Authorino did not drop the AuthConfig of {host} within {seconds}s"))?;
            }
        }
        Ok(GatewayRoutes(derived))
    }

    /// What the gateway answers a request to `host` that carries `key` where the host's AuthConfig (from `routes`)
    /// looks for it: 200 accepted, 401 refused, 404 no AuthConfig for the host.
    pub async fn check(&self, routes: &GatewayRoutes, host: &str, key: &str) -> u16 {
        let credentials = routes
            .0
            .iter()
            .find(|r| r.hosts.iter().any(|h| h == host))
            .and_then(|r| r.api_key_rules.first())
            .map(|r| r.credentials.clone())
            .unwrap_or(Credentials::AuthorizationHeader { prefix: "Bearer".into() });
        self.check_with(host, key, &credentials).await
    }

    /// Like `check`, sending the key as `credentials` says.
    pub async fn check_with(&self, host: &str, key: &str, credentials: &Credentials) -> u16 {
        let mut path = "/check".to_owned();
        let mut headers: Vec<(String, String)> = vec![("host".into(), host.into())];
        match credentials {
            Credentials::AuthorizationHeader { prefix } => {
                headers.push(("authorization".into(), format!("{prefix} {key}")))
            }
            Credentials::CustomHeader { name } => headers.push((name.to_lowercase(), key.into())),
            Credentials::QueryString { name } => path = format!("/check?{name}={key}"),
            Credentials::Cookie { name } => headers.push(("cookie".into(), format!("{name}={key}"))),
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::http_get(&self.http, &path, &headers).await.status
    }

    /// Waits until the gateway answers `expected` for `key` on `host` (Authorino sees Secrets through a watch, so a
    /// change reaches it a moment after the API server has it); returns how long that took.
    pub async fn await_status(
        &self,
        routes: &GatewayRoutes,
        host: &str,
        key: &str,
        expected: u16,
        seconds: u64,
    ) -> std::time::Duration {
        let start = std::time::Instant::now();
        let what = format!("the gateway to answer {expected} for the key on {host}");
        eventually(seconds, &what, || async { (self.check(routes, host, key).await == expected).then_some(()) }).await;
        start.elapsed()
    }
}

/// Hosts of routes that no longer have an AuthConfig.
fn routes_hosts_without_config(routes: &[Value], derived: &[GatewayRoute]) -> Vec<String> {
    let covered: BTreeSet<&str> = derived.iter().flat_map(|r| r.hosts.iter().map(String::as_str)).collect();
    routes
        .iter()
        .flat_map(|r| r["spec"]["hostnames"].as_array().cloned().unwrap_or_default())
        .filter_map(|h| h.as_str().map(str::to_owned))
        .filter(|h| !covered.contains(h.as_str()))
        .collect()
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"].as_str().expect("a name").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(ns: &str, name: &str, hosts: &[&str], gateway: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name},
               "spec": {"hostnames": hosts, "parentRefs": [{"name": gateway, "namespace": "gw"}]}})
    }

    fn policy(ns: &str, name: &str, kind: &str, target: &str, created: &str, rules_at: &str) -> Value {
        let rules = json!({"authentication": {"keys": {"apiKey": {"selector": {"matchLabels": {"app": name}}},
                                                      "credentials": {"customHeader": {"name": "X-Key"}}}}});
        let mut spec = json!({"targetRef": {"group": "gateway.networking.k8s.io", "kind": kind, "name": target}});
        match rules_at {
            "rules" => spec["rules"] = rules,
            at => spec[at] = json!({"rules": rules}),
        }
        json!({"metadata": {"namespace": ns, "name": name, "creationTimestamp": created}, "spec": spec})
    }

    #[test]
    fn gateway_overrides_beat_the_routes_own_policy_which_beats_gateway_defaults() {
        let r = route("shop", "toys", &["toys.example.com"], "external");
        let own = policy("shop", "own", "HTTPRoute", "toys", "2026-01-02T00:00:00Z", "rules");
        let defaults = policy("gw", "defaults", "Gateway", "external", "2026-01-01T00:00:00Z", "defaults");
        let overrides = policy("gw", "overrides", "Gateway", "external", "2026-01-03T00:00:00Z", "overrides");
        let name = |p: Option<&Value>| p.map(|p| id(p).1);
        assert_eq!(
            name(effective_policy(&r, &[defaults.clone(), own.clone(), overrides.clone()])).unwrap(),
            "overrides"
        );
        assert_eq!(name(effective_policy(&r, &[defaults.clone(), own.clone()])).unwrap(), "own");
        assert_eq!(name(effective_policy(&r, std::slice::from_ref(&defaults))).unwrap(), "defaults");
        let elsewhere = policy("other", "x", "HTTPRoute", "toys", "2026-01-01T00:00:00Z", "rules");
        assert!(effective_policy(&r, &[elsewhere]).is_none(), "a policy in another namespace does not reach the route");
    }

    #[test]
    fn the_oldest_of_two_route_policies_wins() {
        let r = route("shop", "toys", &["toys.example.com"], "external");
        let older = policy("shop", "b-older", "HTTPRoute", "toys", "2026-01-01T00:00:00Z", "rules");
        let newer = policy("shop", "a-newer", "HTTPRoute", "toys", "2026-01-02T00:00:00Z", "rules");
        assert_eq!(id(effective_policy(&r, &[newer, older]).unwrap()).1, "b-older");
    }

    #[test]
    fn the_auth_config_has_the_routes_hosts_and_the_policys_key_rules() {
        let r = route("shop", "toys", &["toys.example.com", "api.toys.example.com"], "external");
        let p = policy("shop", "own", "HTTPRoute", "toys", "2026-01-01T00:00:00Z", "rules");
        let derived = auth_config(&r, &p).unwrap();
        assert_eq!(derived.auth_config["spec"]["hosts"], json!(["toys.example.com", "api.toys.example.com"]));
        assert_eq!(derived.auth_config["metadata"]["namespace"], AUTHCONFIG_NAMESPACE);
        assert_eq!(derived.api_key_rules[0].credentials, Credentials::CustomHeader { name: "X-Key".into() });
        assert!(derived.selects(&BTreeMap::from([("app".to_owned(), "own".to_owned())])));
        assert!(!derived.selects(&BTreeMap::from([("app".to_owned(), "other".to_owned())])));
        assert!(auth_config(&route("shop", "bare", &[], "external"), &p).is_none(), "no hostnames, no AuthConfig");
    }

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let labels = BTreeMap::from([("app".to_owned(), "toys".to_owned())]);
        assert!(selector_matches(&json!({}), &labels), "an empty selector selects everything");
        assert!(selector_matches(
            &json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["toys"]}]}),
            &labels
        ));
        assert!(!selector_matches(
            &json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["toys"]}]}),
            &labels
        ));
        assert!(selector_matches(&json!({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}), &labels));
        assert!(!selector_matches(&json!({"matchLabels": {"app": "toys", "tier": "gold"}}), &labels));
    }
}
