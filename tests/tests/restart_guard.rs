//! No restart ever takes a valid key away: a bridge that starts while its watch of products is refused (a slow
//! or failing first LIST on a large cluster) must not read "product missing from the cache" as "product gone".
//! Thousands of products and hundreds of approved keys; the bridge restarted with SIGTERM (the new process leads
//! at once) and killed with -9 (a second replica takes over), each time with its product watch refused for a
//! while. Each time the test waits until the new leader has tried every key (and put each off, its caches not
//! synced) while its product watch is still refused: a watch on the enforcement namespace must see no deletion,
//! and every key must still have its enforcement copy.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use apiportal_core::{APIProduct, rbac};
use apiportal_tests::{
    Bridge, Persona, cluster, eventually,
    fixtures::{ENFORCEMENT_NAMESPACE, apikey, enforcement_secrets, team_secrets},
    stage::Stage,
};
use futures::{StreamExt, TryStreamExt, stream};

use k8s_openapi::api::{core::v1::Secret, rbac::v1::ClusterRole};
use kube::{
    Api,
    api::PostParams,
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

const PRODUCTS: usize = 2000;
const KEYS: usize = 200;

/// Takes every right on APIProducts from the bridge's ClusterRole (its product watch, LIST and GET fail), or
/// gives them back.
async fn product_rights(enabled: bool) {
    let roles: Api<ClusterRole> = Api::all(cluster().client(Persona::Admin).await);
    let mut role = roles.get(rbac::BRIDGE_ROLE).await.unwrap();
    let full = rbac::bridge().rules.unwrap();
    role.rules = Some(if enabled {
        full
    } else {
        full.into_iter()
            .filter(|r| !r.resources.as_ref().is_some_and(|res| res.iter().any(|x| x == "apiproducts")))
            .collect()
    });
    roles.replace(rbac::BRIDGE_ROLE, &PostParams::default(), &role).await.unwrap();
}

/// Counts deletions of the enforcement copies of `team`'s keys, from now on.
fn count_deletions(team: &str) -> Arc<AtomicUsize> {
    let deleted = Arc::new(AtomicUsize::new(0));
    let counter = deleted.clone();
    let team = team.to_owned();
    tokio::spawn(async move {
        let secrets: Api<Secret> = Api::namespaced(cluster().client(Persona::Admin).await, ENFORCEMENT_NAMESPACE);
        let config = watcher::Config::default().labels(&format!("{}={team}", apiportal_core::labels::APIKEY_NAMESPACE));
        let events = watcher(secrets, config).default_backoff();
        futures::pin_mut!(events);
        while let Ok(Some(event)) = events.try_next().await {
            if let watcher::Event::Delete(s) = event {
                eprintln!("enforcement Secret deleted: {:?}", s.metadata.name);
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    deleted
}

/// Waits until `bridge`, leading while its product watch is refused, has tried to reconcile every key and put it
/// off (its caches have not synced): the moment it would have revoked them, were it to trust a product cache that
/// has not listed anything. Each key is tried again every second, so twice as many tries as keys cover every key.
/// Then checks that it is still unsynced, and that every key still has its enforcement copy.
async fn wait_every_key_put_off(bridge: &Bridge, deleted: &AtomicUsize, team: &str) {
    eventually(120, "the new leader to try every key while its product watch is refused", || async {
        let n = bridge.metric("apiportal_bridge_reconciles_deferred_total{controller=\"apikey\"}").await?;
        (n >= 2.0 * KEYS as f64).then_some(())
    })
    .await;
    let ready = bridge.get("/readyz", &[]).await;
    assert_eq!(
        (ready.status, ready.text().trim()),
        (503, "watch caches not synced yet"),
        "the product watch was refused throughout"
    );
    assert_eq!(deleted.load(Ordering::SeqCst), 0, "no enforcement Secret deleted while the product cache was empty");
    let (_, enforcement) = team_secrets(cluster(), team).await;
    assert_eq!(enforcement.len(), KEYS, "every key still has its enforcement copy");
}

/// Waits until `bridge` leads with synced caches and has reconciled every key once since it started.
async fn wait_caught_up(bridge: &Bridge) {
    bridge.wait_ready().await;
    eventually(120, "the bridge to reconcile every key after syncing", || async {
        let n = bridge.metric("apiportal_bridge_reconciles_total{controller=\"apikey\"}").await.unwrap_or(0.0);
        (n >= KEYS as f64).then_some(())
    })
    .await;
}

#[tokio::test]
async fn restarts_with_a_refused_product_watch_take_no_valid_key_away() {
    let c = cluster();
    let stage = Stage::new(c).await;
    let bridge = Bridge::start(c, &[]).await;
    stage.published_product(c, "toys", "automatic").await;
    let admin_products: Api<APIProduct> = Api::namespaced(c.client(Persona::Admin).await, &stage.shop);
    stream::iter(0..PRODUCTS)
        .for_each_concurrent(32, |i| {
            let api = admin_products.clone();
            async move {
                let p: APIProduct = serde_json::from_value(json!({"apiVersion": apiportal_core::API_VERSION, "kind": "APIProduct",
                    "metadata": {"name": format!("filler-{i:04}")}, "spec": {"displayName": "Filler", "targetRef": {"name": "toys"}}}))
                .unwrap();
                api.create(&PostParams::default(), &p).await.expect("create a product");
            }
        })
        .await;
    let keys: Api<apiportal_core::APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &stage.team);
    stream::iter(0..KEYS)
        .for_each_concurrent(16, |i| {
            let keys = keys.clone();
            let shop = stage.shop.clone();
            async move {
                keys.create(&PostParams::default(), &apikey(&format!("k-{i:03}"), &shop, "toys", "gold", "alice"))
                    .await
                    .expect("request");
            }
        })
        .await;
    let admin_keys: Api<apiportal_core::APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    eventually(180, "every key to be issued", || async {
        let all = admin_keys.list(&Default::default()).await.ok()?.items;
        (all.iter().filter(|k| k.status.as_ref().is_some_and(|s| s.issued.is_some())).count() == KEYS).then_some(())
    })
    .await;
    let deleted = count_deletions(&stage.team);

    // 1. SIGTERM: the Lease is released, the new process leads at once, with its product watch refused.
    product_rights(false).await;
    drop(bridge);
    let restarted = Bridge::start_unready(c, &[]);
    eventually(30, "the new process to lead", || async {
        (restarted.metric("apiportal_bridge_leader").await == Some(1.0)).then_some(())
    })
    .await;
    wait_every_key_put_off(&restarted, &deleted, &stage.team).await;
    product_rights(true).await;
    wait_caught_up(&restarted).await;

    // 2. kill -9 of the leader, while a second replica whose product watch is refused waits to take over.
    product_rights(false).await;
    let standby = Bridge::start_unready(c, &[]);
    let mut leader = restarted;
    leader.kill9();
    eventually(30, "the standby to take over", || async {
        (standby.metric("apiportal_bridge_leader").await == Some(1.0)).then_some(())
    })
    .await;
    wait_every_key_put_off(&standby, &deleted, &stage.team).await;
    product_rights(true).await;
    wait_caught_up(&standby).await;
    standby.assert_healthy().await;

    assert_eq!(deleted.load(Ordering::SeqCst), 0, "no valid key lost its enforcement Secret");
    let mut remaining = 0;
    for i in 0..KEYS {
        remaining += enforcement_secrets(c, &stage.team, &format!("k-{i:03}")).await.len();
    }
    assert_eq!(remaining, KEYS, "every key still opens the gateway");
}
