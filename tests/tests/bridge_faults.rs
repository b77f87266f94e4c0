//! The bridge under faults: killed mid-burst and restarted, and two replicas sharing a Lease. Every request
//! must end Approved with exactly one key in exactly two matching Secrets, and nothing else.

use std::collections::HashSet;

use apiportal_core::{APIKey, KeyPhase};
use apiportal_tests::{
    Bridge, Persona, cluster, eventually,
    fixtures::{apikey, key_of, team_secrets, value},
    stage::Stage,
};
use futures::{StreamExt, stream};
use kube::{Api, api::PostParams};
use serde_json::json;

/// The tests here each run their own bridges, which would contend for one Lease if run at once.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn create_requests(stage: &Stage, prefix: &str, count: usize) {
    let keys: Api<APIKey> = Api::namespaced(cluster().client(Persona::Consumer).await, &stage.team);
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let keys = keys.clone();
            let shop = stage.shop.clone();
            async move {
                let key = apikey(&format!("{prefix}-{i:03}"), &shop, "toys", "gold", "alice");
                keys.create(&PostParams::default(), &key).await.expect("create request");
            }
        })
        .await;
}

fn issued(keys: &[APIKey]) -> usize {
    keys.iter()
        .filter(|k| k.phase() == KeyPhase::Approved && k.status.as_ref().is_some_and(|s| s.secret_ref.is_some()))
        .count()
}

/// Exactly one consumer copy and one enforcement copy per key, equal to each other, all keys distinct.
async fn assert_one_key_per_request(stage: &Stage, expected: usize) {
    let c = cluster();
    let (consumer, enforcement) = team_secrets(c, &stage.team).await;
    assert_eq!(consumer.len(), expected, "one consumer Secret per approved key");
    assert_eq!(enforcement.len(), expected, "one enforcement Secret per approved key");
    let mut values = HashSet::new();
    for e in &enforcement {
        let twin = consumer
            .iter()
            .find(|c| key_of(c) == key_of(e))
            .unwrap_or_else(|| panic!("no consumer copy for {}", key_of(e)));
        assert_eq!(value(e), value(twin), "both copies of {} hold the same key", key_of(e));
        assert!(values.insert(value(e)), "every key is different");
    }
}

#[tokio::test]
async fn a_bridge_killed_mid_burst_converges_with_one_key_per_request() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let stage = Stage::new(c).await;
    let mut bridge = Bridge::start(c, &[]).await;
    stage.published_product(c, "toys", "automatic").await;

    const REQUESTS: usize = 200;
    create_requests(&stage, "burst", REQUESTS).await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let done_before_kill = eventually(60, "some keys to be issued", || async {
        let n = issued(&keys.list(&Default::default()).await.unwrap().items);
        (n >= 20).then_some(n)
    })
    .await;
    bridge.kill9();
    let after_kill = issued(&keys.list(&Default::default()).await.unwrap().items);
    eprintln!("killed the bridge with {done_before_kill}..{after_kill} of {REQUESTS} keys issued");
    assert!(after_kill < REQUESTS, "the kill must land mid-burst to test anything");

    let restarted = Bridge::start(c, &[]).await;
    eventually(180, "every request to be approved with its Secrets", || async {
        (issued(&keys.list(&Default::default()).await.unwrap().items) == REQUESTS).then_some(())
    })
    .await;
    assert_one_key_per_request(&stage, REQUESTS).await;
    restarted.assert_healthy().await;
}

/// The value of a Prometheus gauge on a bridge.
async fn gauge(bridge: &Bridge, name: &str) -> Option<i64> {
    bridge.metric(name).await.map(|v| v as i64)
}

#[tokio::test]
async fn two_replicas_one_leader_and_the_other_takes_over_after_a_crash() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let stage = Stage::new(c).await;
    let first = Bridge::start(c, &[]).await;
    let second = Bridge::start(c, &[]).await;
    let leaders =
        || async { [gauge(&first, "apiportal_bridge_leader").await, gauge(&second, "apiportal_bridge_leader").await] };
    let elected = eventually(30, "a leader", || async {
        let l = leaders().await;
        assert!(l.iter().flatten().sum::<i64>() <= 1, "two replicas lead at once: {l:?}");
        (l.iter().flatten().sum::<i64>() == 1).then_some(l)
    })
    .await;
    stage.published_product(c, "toys", "automatic").await;
    create_requests(&stage, "before", 10).await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    // Sampled all the while the keys are issued: never two leaders, never a change of leader.
    eventually(60, "the leader to issue keys", || async {
        assert_eq!(leaders().await, elected, "exactly one replica, the same, leads throughout");
        (issued(&keys.list(&Default::default()).await.unwrap().items) == 10).then_some(())
    })
    .await;

    // Crash whichever replica leads; the other must take over once the Lease expires.
    let (mut leader, follower) = if elected[0] == Some(1) { (first, second) } else { (second, first) };
    leader.kill9();
    create_requests(&stage, "after", 10).await;
    eventually(60, "the follower to take over", || async {
        (gauge(&follower, "apiportal_bridge_leader").await == Some(1)).then_some(())
    })
    .await;
    eventually(60, "keys requested after the crash", || async {
        (issued(&keys.list(&Default::default()).await.unwrap().items) == 20).then_some(())
    })
    .await;
    assert_one_key_per_request(&stage, 20).await;
    follower.assert_healthy().await;
}

/// TCP connections the process `pid` has established to `port` on loopback, read from /proc (no tools needed).
fn connections_to(pid: i32, port: u16) -> usize {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let established_to_port = |line: &str| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let remote_port =
            fields.get(2).and_then(|r| r.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
        fields.get(3) == Some(&"01") && remote_port == Some(port) && fields.get(9).is_some_and(|i| inodes.contains(*i))
    };
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).ok())
        .map(|text| text.lines().skip(1).filter(|l| established_to_port(l)).count())
        .sum()
}

#[tokio::test]
async fn a_restart_with_a_backlog_of_products_keeps_the_api_server_load_bounded() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let stage = Stage::new(c).await;
    const BACKLOG: usize = 300;
    const CONCURRENCY: usize = 4;
    let products: Api<apiportal_core::APIProduct> = Api::namespaced(c.client(Persona::Admin).await, &stage.shop);
    stream::iter(0..BACKLOG)
        .for_each_concurrent(16, |i| {
            let products = products.clone();
            async move {
                let p = serde_json::from_value(json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
                    "metadata": {"name": format!("backlog-{i:03}")}, "spec": {"displayName": "Backlog", "targetRef": {"name": "toys"}}}))
                .unwrap();
                products.create(&PostParams::default(), &p).await.expect("create product");
            }
        })
        .await;
    let api_port: u16 = c.server.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();

    // A leader that starts with hundreds of products to reconcile at once: each reconcile is a request, and
    // unbounded they would each open a connection to the API server.
    let bridge = Bridge::start(c, &[&format!("--max-concurrent-reconciles={CONCURRENCY}")]).await;
    let pid = bridge.pid();
    let mut most = 0;
    let reconciled = |list: &[apiportal_core::APIProduct]| list.iter().filter(|p| p.status.is_some()).count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while reconciled(&products.list(&Default::default()).await.unwrap().items) < BACKLOG {
        assert!(std::time::Instant::now() < deadline, "the backlog was not reconciled in 120 s");
        for _ in 0..10 {
            most = most.max(connections_to(pid, api_port));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    eprintln!("reconciled {BACKLOG} products with at most {most} connections to the API server");
    // Besides the reconciles in flight: one long-lived watch per cached kind (5), the Lease, Events and idle
    // pooled connections (11 to 14 seen). Unbounded, the same backlog held over 300.
    assert!(
        most <= CONCURRENCY + 20,
        "the bridge held {most} connections to the API server while catching up; --max-concurrent-reconciles={CONCURRENCY} bounds it"
    );
    assert!(most > 0, "the probe sees the bridge's connections");
    bridge.assert_healthy().await;
}
