//! The API server goes away in the middle of a burst of automatic requests and comes back: the bridge
//! reconnects by itself, and every request still ends Approved with exactly one key in two matching Secrets.

use apiportal_core::{APIKey, KeyPhase};
use apiportal_tests::{
    Persona, cluster, eventually,
    fixtures::{apikey, team_secrets},
    shared_bridge,
    stage::Stage,
};
use futures::{StreamExt, stream};
use kube::{Api, api::PostParams};

#[tokio::test]
async fn the_bridge_rides_out_an_api_server_restart_mid_burst() {
    let c = cluster();
    let bridge = shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;

    const REQUESTS: usize = 200;
    let consumer: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &stage.team);
    stream::iter(0..REQUESTS)
        .for_each_concurrent(16, |i| {
            let (consumer, shop) = (consumer.clone(), stage.shop.clone());
            async move {
                let key = apikey(&format!("k-{i:03}"), &shop, "toys", "gold", "alice");
                consumer.create(&PostParams::default(), &key).await.unwrap();
            }
        })
        .await;
    let issued = |keys: Vec<APIKey>| {
        keys.iter()
            .filter(|k| k.phase() == KeyPhase::Approved && k.status.as_ref().is_some_and(|s| s.secret_ref.is_some()))
            .count()
    };
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let before = eventually(60, "the burst to be under way", || async {
        let n = issued(keys.list(&Default::default()).await.ok()?.items);
        (n >= 10).then_some(n)
    })
    .await;
    assert!(before < REQUESTS, "the restart must land mid-burst to test anything");
    c.restart_apiserver(3);
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    eprintln!("kube-apiserver was down for 3 s with {before} of {REQUESTS} keys issued");
    eventually(180, "every request to be approved with its Secrets after the restart", || async {
        (issued(keys.list(&Default::default()).await.ok()?.items) == REQUESTS).then_some(())
    })
    .await;
    let (consumer_copies, enforcement_copies) = team_secrets(c, &stage.team).await;
    assert_eq!(
        (consumer_copies.len(), enforcement_copies.len()),
        (REQUESTS, REQUESTS),
        "one Secret of each kind per request"
    );
    bridge.assert_healthy().await;
    assert_eq!(bridge.get("/readyz", &[]).await.status, 200, "the same bridge process is still serving");
}
