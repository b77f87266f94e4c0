//! apiportal's benchmarks, each side by side with its baseline in one run on the real API server. They print
//! figures and assert nothing about time (these machines are shared and noisy: read the ratios).
//!
//!   1. view: GET /api/v1/products on the bridge vs a LIST of the same products from the API server, same client,
//!      both over TLS and asking for gzip as Backstage does; and a 304 revalidation vs a LIST
//!   2. approval: create-to-Approved-with-Secret for automatic requests vs creating as many Secrets directly, and
//!      the ratio to the write limit (raw creates per second divided by the writes the bridge makes per approval)
//!   3. cli: `kubectl apiportal products -o json` vs `kubectl get apiproducts -o json`
//!   4. memory: bridge RSS with many products and keys in its cache
//!
//! Sizes: APIPORTAL_BENCH_PRODUCTS (default "1000,10000"), APIPORTAL_BENCH_APPROVALS (1000),
//! APIPORTAL_BENCH_KEYS (50000); APIPORTAL_BENCH_ONLY=view,cli,approval,memory runs some. Run with tests/bench.sh.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use apiportal_core::APIProduct;
use apiportal_tests::{
    Bridge, HttpClient, Persona, cluster, eventually, fixtures::apikey, http_client, http_get, run, stage::Stage,
};
use futures::{StreamExt, stream};
use k8s_openapi::api::{coordination::v1::Lease, core::v1::Secret};
use kube::{Api, api::PostParams};
use serde_json::json;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Figures {
    p50: Duration,
    p99: Duration,
    rps: f64,
}

/// Sequential latency over `samples` calls, then throughput with 8 concurrent callers for `seconds`.
async fn measure<F, Fut>(samples: usize, seconds: u64, call: F) -> Figures
where
    F: Fn() -> Fut + Clone,
    Fut: std::future::Future<Output = ()>,
{
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let start = Instant::now();
        call().await;
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let counts = futures::future::join_all((0..8).map(|_| {
        let call = call.clone();
        async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                call().await;
                n += 1;
            }
            n
        }
    }))
    .await;
    Figures {
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        rps: counts.iter().sum::<usize>() as f64 / seconds as f64,
    }
}

async fn create_products(ns: &str, count: usize) {
    let api: Api<APIProduct> = Api::namespaced(cluster().client(Persona::Admin).await, ns);
    stream::iter(0..count)
        .for_each_concurrent(32, |i| {
            let api = api.clone();
            async move {
                let p = serde_json::from_value(json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
                    "metadata": {"name": format!("p-{i:05}")}, "spec": {"displayName": format!("Product {i}"), "targetRef": {"name": "toys"},
                    "publishStatus": "Published", "tags": ["bench"], "description": "A product for the benchmark."}}))
                .unwrap();
                api.create(&PostParams::default(), &p).await.unwrap();
            }
        })
        .await;
}

/// One call's figures: latency percentiles (sequential) and throughput (8 concurrent callers).
async fn measure_get(
    client: &HttpClient,
    path: &str,
    headers: &[(&str, &str)],
    expect: u16,
    samples: usize,
) -> Figures {
    measure(samples, 5, || async move {
        let answer = http_get(client, path, headers).await;
        assert_eq!(answer.status, expect, "{path}: {}", answer.text());
    })
    .await
}

async fn view_benchmark(sizes: &[usize]) {
    let c = cluster();
    let backstage = c.backstage_token().await;
    let admin_token = c.token(Persona::Admin).to_owned();
    let apiserver = http_client(&c.server, &c.ca_file());
    println!("\n## 1. View: GET /api/v1/products on the bridge vs LIST apiproducts on the API server");
    println!(
        "Both over TLS, both asking for gzip (Accept-Encoding: gzip, as Backstage does), same client; bodies not decompressed."
    );
    println!(
        "| products | bridge p50 | bridge p99 | bridge req/s | API LIST p50 | API LIST p99 | API LIST req/s | req/s ratio | bridge 304 p50 | 304 req/s | 304 vs LIST |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &size in sizes {
        let ns = c.namespace("bench-view").await;
        create_products(&ns, size).await;
        // A follower watching only this namespace: its whole catalog is these products, and it never reconciles.
        let bridge = Bridge::start(c, &["--lease-name=bench-held", &format!("--namespace={ns}")]).await;
        let auth = format!("Bearer {backstage}");
        let headers = [("authorization", auth.as_str()), ("accept-encoding", "gzip")];
        let etag = eventually(300, "the bridge to serve every product", || async {
            let answer = bridge.get("/api/v1/products", &[("authorization", auth.as_str())]).await;
            (answer.status == 200 && answer.json()["items"].as_array().map(Vec::len) == Some(size))
                .then(|| answer.header("etag").unwrap().to_owned())
        })
        .await;
        let gzip_etag = bridge.get("/api/v1/products", &headers).await.header("etag").unwrap().to_owned();
        assert_ne!(gzip_etag, etag);
        let samples = if size >= 10_000 { 100 } else { 300 };
        let served = measure_get(&bridge.http(), "/api/v1/products", &headers, 200, samples).await;
        let revalidate =
            [("authorization", auth.as_str()), ("accept-encoding", "gzip"), ("if-none-match", gzip_etag.as_str())];
        let not_modified = measure_get(&bridge.http(), "/api/v1/products", &revalidate, 304, samples).await;
        let list_path = format!("/apis/devportal.kuadrant.io/v1alpha1/namespaces/{ns}/apiproducts");
        let admin_auth = format!("Bearer {admin_token}");
        let list_headers = [("authorization", admin_auth.as_str()), ("accept-encoding", "gzip")];
        let list = measure_get(&apiserver, &list_path, &list_headers, 200, samples.min(60)).await;
        println!(
            "| {size} | {} | {} | {:.0} | {} | {} | {:.1} | {:.0}x | {} | {:.0} | {:.0}x |",
            ms(served.p50),
            ms(served.p99),
            served.rps,
            ms(list.p50),
            ms(list.p99),
            list.rps,
            served.rps / list.rps,
            ms(not_modified.p50),
            not_modified.rps,
            not_modified.rps / list.rps
        );
    }
}

/// The writes the bridge makes to issue one automatic key (see `bridge/src/controller/apikey/plan/`): the
/// enforcement Secret, the consumer's Secret, one status write (the decision with the key's record), the request's
/// projection and the approval's Event. (The finalizer is set at create by a MutatingAdmissionPolicy.)
const WRITES_PER_APPROVAL: f64 = 5.0;

/// Creates `count` automatic requests `{prefix}-NNNNN` as the consumer, 16 at a time; returns when each was
/// created.
async fn create_requests(stage: &Stage, prefix: &str, count: usize) -> std::collections::HashMap<String, Instant> {
    let consumer: Api<apiportal_core::APIKey> = Api::namespaced(cluster().client(Persona::Consumer).await, &stage.team);
    let created_at = std::sync::Mutex::new(std::collections::HashMap::new());
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let (consumer, created_at) = (consumer.clone(), &created_at);
            async move {
                let name = format!("{prefix}-{i:05}");
                let t = Instant::now();
                consumer
                    .create(&PostParams::default(), &apikey(&name, &stage.shop, "toys", "gold", "alice"))
                    .await
                    .unwrap();
                created_at.lock().unwrap().insert(name, t);
            }
        })
        .await;
    created_at.into_inner().unwrap()
}

/// Watches the stage's keys until `count` named `{prefix}-*` are issued; when each was. A watch, not polling:
/// listing a thousand keys every few milliseconds would load the API server more than the bridge does.
fn watch_issued(
    stage: &Stage,
    prefix: &str,
    count: usize,
) -> tokio::task::JoinHandle<std::collections::HashMap<String, Instant>> {
    let (team, prefix) = (stage.team.clone(), format!("{prefix}-"));
    tokio::spawn(async move {
        use kube::runtime::{WatchStreamExt, watcher};
        let keys: Api<apiportal_core::APIKey> = Api::namespaced(cluster().client(Persona::Admin).await, &team);
        let mut done = std::collections::HashMap::new();
        let events = watcher(keys, watcher::Config::default()).applied_objects();
        futures::pin_mut!(events);
        while done.len() < count {
            let Some(Ok(k)) = events.next().await else { continue };
            let name = k.metadata.name.clone().unwrap();
            if name.starts_with(&prefix) && k.status.as_ref().is_some_and(|s| s.issued.is_some()) {
                done.entry(name).or_insert_with(Instant::now);
            }
        }
        done
    })
}

/// Extra flags for the reconciling bridge (APIPORTAL_BENCH_BRIDGE_ARGS, e.g. --max-concurrent-reconciles=64).
fn bench_bridge_args() -> String {
    std::env::var("APIPORTAL_BENCH_BRIDGE_ARGS").unwrap_or_default()
}

/// A shop with a published automatic product whose plans a leader has discovered, and a consumer team.
async fn published_stage() -> Stage {
    let c = cluster();
    let extra = bench_bridge_args();
    let flags: Vec<&str> = extra.split_whitespace().collect();
    let stage = Stage::new(c).await;
    let _leader = Bridge::start(c, &flags).await;
    stage.published_product(c, "toys", "automatic").await;
    stage
}

/// Create-to-issued times of `count` requests created while a leader runs, sorted.
async fn live_latencies(stage: &Stage, flags: &[&str], count: usize) -> Vec<Duration> {
    let _leader = Bridge::start(cluster(), flags).await;
    let issued = watch_issued(stage, "live", count);
    let created = create_requests(stage, "live", count).await;
    let issued = issued.await.unwrap();
    let mut latencies: Vec<Duration> = issued.iter().map(|(n, at)| at.duration_since(created[n])).collect();
    latencies.sort();
    latencies
    // The leader stops here (SIGTERM: it releases its Lease).
}

/// Approvals, two ways, for `stage`'s product. Latency (only without a backlog): requests created while a bridge
/// leads, each timed from its create to its issued status. Throughput: a backlog of `count` requests made while
/// no bridge runs, then a fresh leader issues them all; timed from its readiness to the last issued key (so the
/// rate at which the harness can create requests does not cap it). `backlog`: products created since `stage` was
/// published that no leader has reconciled, so key reconciles share the API server with a product catch-up (a
/// restart in a large cluster).
async fn approval_benchmark(stage: Stage, count: usize, backlog: usize) {
    let c = cluster();
    let extra = bench_bridge_args();
    let flags: Vec<&str> = extra.split_whitespace().collect();

    // A leader here would catch up on the backlog before the throughput phase could.
    let latencies = if backlog == 0 { Some(live_latencies(&stage, &flags, count).await) } else { None };

    create_requests(&stage, "queued", count).await;
    let calls_before = apiserver_calls().await;
    let issued = watch_issued(&stage, "queued", count);
    let leader = Bridge::start(c, &flags).await;
    let started = Instant::now();
    let issued = issued.await.unwrap();
    let total = issued.values().max().unwrap().duration_since(started);
    drop(leader);
    let calls = apiserver_calls().await.since(&calls_before);
    let (writes, reads) = (calls.writes(), calls.reads());

    let secrets: Api<Secret> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let baseline_calls_before = apiserver_calls().await;
    let baseline_start = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(16, |i| {
            let secrets = secrets.clone();
            async move {
                let s = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("direct-{i:05}")}, "stringData": {"api_key": "x"}})).unwrap();
                secrets.create(&PostParams::default(), &s).await.unwrap();
            }
        })
        .await;
    let baseline = baseline_start.elapsed();
    let baseline_calls = apiserver_calls().await.since(&baseline_calls_before);
    let approvals_per_second = count as f64 / total.as_secs_f64();
    let creates_per_second = count as f64 / baseline.as_secs_f64();
    let limit = creates_per_second / WRITES_PER_APPROVAL;
    println!(
        "\n## 2. Approval: {count} automatic requests{}{}",
        if backlog == 0 {
            String::new()
        } else {
            format!(", while catching up on {backlog} never-reconciled products")
        },
        if flags.is_empty() { String::new() } else { format!(" (bridge flags: {extra})") }
    );
    println!(
        "{}Throughput: {count} requests waiting, a new leader issues them all, from its readiness to the last. An approval takes {WRITES_PER_APPROVAL} writes (finalizer, decision, enforcement Secret, consumer Secret, status, Event) and no reads: the write limit is raw creates/s ÷ {WRITES_PER_APPROVAL}. Measured from the API server's apiserver_request_total while the backlog was issued: {:.2} writes and {:.2} reads (GET) per approval.",
        if latencies.is_some() { "Latency: created while the bridge leads, create to issued. " } else { "" },
        writes as f64 / count as f64,
        reads as f64 / count as f64
    );
    println!(
        "| requests | p50 latency | p99 latency | backlog issued in | approvals/s | baseline: {count} Secrets created directly | raw creates/s | write limit (approvals/s) | ratio to the limit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {count} | {} | {} | {:.1} s | {approvals_per_second:.0} | {:.1} s | {creates_per_second:.0} | {limit:.0} | {:.2} |",
        latencies.as_ref().map_or("—".into(), |l| ms(percentile(l, 0.5))),
        latencies.as_ref().map_or("—".into(), |l| ms(percentile(l, 0.99))),
        total.as_secs_f64(),
        baseline.as_secs_f64(),
        approvals_per_second / limit
    );
    println!(
        "Approvals per second against raw Secret creates per second in the same run: {:.3}x (goal >= 0.20x without a backlog of products, >= 0.10x with one).",
        approvals_per_second / creates_per_second
    );
    println!(
        "Where the API server spent the backlog, by request (its apiserver_request_duration_seconds, mean per request), beside a raw Secret create:"
    );
    println!("| request | count | per approval | mean latency in the API server | ratio to a raw Secret create |");
    println!("|---|---|---|---|---|");
    let raw = baseline_calls.mean(("POST", "secrets", "")).unwrap_or_default();
    let mut rows: Vec<_> = calls.1.iter().filter(|(k, _)| k.1 != "leases" && k.0 != "WATCH").collect();
    rows.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for ((verb, resource, subresource), (n, _)) in rows.into_iter().filter(|(_, (n, _))| *n as usize >= count / 2) {
        let mean = calls.mean((verb, resource, subresource)).unwrap_or_default();
        let name = if subresource.is_empty() { resource.clone() } else { format!("{resource}/{subresource}") };
        println!(
            "| {verb} {name} | {n:.0} | {:.2} | {:.2} ms | {:.2}x |",
            n / count as f64,
            mean * 1000.0,
            if raw > 0.0 { mean / raw } else { 0.0 }
        );
    }
    println!("| (baseline) POST secrets | {count} | — | {:.2} ms | 1.00x |", raw * 1000.0);
}

/// The API server's request counts by (verb, resource), and request durations (count, seconds) by (verb,
/// resource, subresource), from its own `/metrics`.
struct ApiCalls(
    std::collections::HashMap<(String, String), u64>,
    std::collections::HashMap<(String, String, String), (f64, f64)>,
);

impl ApiCalls {
    fn since(&self, before: &ApiCalls) -> ApiCalls {
        ApiCalls(
            self.0.iter().map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or(0))).collect(),
            self.1
                .iter()
                .map(|(k, (n, t))| {
                    let (bn, bt) = before.1.get(k).copied().unwrap_or_default();
                    (k.clone(), (n - bn, t - bt))
                })
                .filter(|(_, (n, _))| *n > 0.0)
                .collect(),
        )
    }
    fn mean(&self, (verb, resource, subresource): (&str, &str, &str)) -> Option<f64> {
        let (n, t) = self.1.get(&(verb.to_owned(), resource.to_owned(), subresource.to_owned()))?;
        (*n > 0.0).then(|| t / n)
    }
    fn count(&self, verbs: &[&str]) -> u64 {
        let resources = ["apikeys", "secrets", "events", "apiproducts", "apikeyrequests"];
        self.0
            .iter()
            .filter(|((verb, resource), _)| verbs.contains(&verb.as_str()) && resources.contains(&resource.as_str()))
            .map(|(_, v)| v)
            .sum()
    }
    fn writes(&self) -> u64 {
        self.count(&["POST", "PATCH", "PUT", "DELETE", "APPLY"])
    }
    fn reads(&self) -> u64 {
        self.count(&["GET"])
    }
}

async fn apiserver_calls() -> ApiCalls {
    let client = cluster().client(Persona::Admin).await;
    let text = client.request_text(http::Request::get("/metrics").body(Vec::new()).unwrap()).await.unwrap();
    let mut counts = std::collections::HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let label = |name: &str| {
            line.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("").to_owned()
        };
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *counts.entry((label("verb"), label("resource"))).or_insert(0) += value as u64;
    }
    let mut durations: std::collections::HashMap<(String, String, String), (f64, f64)> = Default::default();
    for line in text.lines().filter(|l| {
        l.starts_with("apiserver_request_duration_seconds_sum{")
            || l.starts_with("apiserver_request_duration_seconds_count{")
    }) {
        let label = |name: &str| {
            line.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("").to_owned()
        };
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let entry = durations.entry((label("verb"), label("resource"), label("subresource"))).or_default();
        if line.starts_with("apiserver_request_duration_seconds_sum{") {
            entry.1 += value;
        } else {
            entry.0 += value;
        }
    }
    ApiCalls(counts, durations)
}

fn cli_benchmark(ns: &str) {
    let c = cluster();
    let time = |mut make: Box<dyn FnMut() -> Command>| {
        let mut runs = Vec::new();
        for _ in 0..10 {
            let start = Instant::now();
            let out = run(make());
            assert!(out.success(), "{}", out.stderr);
            runs.push(start.elapsed());
        }
        runs.sort();
        percentile(&runs, 0.5)
    };
    let ours = time(Box::new(|| {
        let mut cmd = c.plugin(Persona::Admin);
        cmd.args(["products", "-o", "json", "-n", ns]);
        cmd
    }));
    let kubectl = time(Box::new(|| {
        let mut cmd = c.kubectl(Persona::Admin);
        cmd.args(["get", "apiproducts", "-o", "json", "-n", ns]);
        cmd
    }));
    println!("\n## 3. CLI: median wall time of 10 runs, same namespace, same cluster");
    println!("| kubectl apiportal products -o json | kubectl get apiproducts -o json | ratio |");
    println!("|---|---|---|");
    println!("| {} | {} | {:.2}x |", ms(ours), ms(kubectl), ours.as_secs_f64() / kubectl.as_secs_f64());
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A Lease held far into the future by someone else: a bridge started with `--lease-name=bench-held` is a
/// follower that serves the view from its cache and never reconciles, so measurements see no status writes.
async fn hold_bench_lease() {
    let c = cluster();
    let leases: Api<Lease> = Api::namespaced(c.client(Persona::Admin).await, apiportal_core::SYSTEM_NAMESPACE);
    let lease = serde_json::from_value(json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "bench-held"},
        "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 86400, "renewTime": jiff::Timestamp::now().to_string(),
                 "acquireTime": jiff::Timestamp::now().to_string()}}))
    .unwrap();
    let _ = leases.create(&PostParams::default(), &lease).await;
}

async fn memory_benchmark(products: usize, keys: usize) {
    let c = cluster();
    let ns = c.namespace("bench-mem").await;
    let bridge = Bridge::start(c, &["--lease-name=bench-held", &format!("--namespace={ns}")]).await;
    let idle = rss_kib(bridge.pid());
    create_products(&ns, products).await;
    let api: Api<apiportal_core::APIKey> = Api::namespaced(c.client(Persona::Admin).await, &ns);
    stream::iter(0..keys)
        .for_each_concurrent(32, |i| {
            let (api, ns) = (api.clone(), ns.clone());
            async move {
                let product = format!("p-{:05}", i % products.max(1));
                let key = apikey(&format!("k-{i:05}"), &ns, &product, "gold", "harness-admin");
                api.create(&PostParams::default(), &key).await.unwrap();
            }
        })
        .await;
    // Both gauges are sampled from the cache on every replica, leader or not.
    eventually(600, "the bridge to cache every product and key", || async {
        let full = bridge.metric("apiportal_bridge_apiproducts").await == Some(products as f64)
            && bridge.metric("apiportal_bridge_apikeys_pending").await == Some(keys as f64);
        full.then_some(())
    })
    .await;
    // And its view serves them (the snapshot is part of what it holds).
    let backstage = c.backstage_token().await;
    let answer = bridge.get_as("/api/v1/products", &backstage).await;
    assert_eq!(answer.json()["items"].as_array().map(Vec::len), Some(products));
    let loaded = rss_kib(bridge.pid());
    println!("\n## 4. Bridge memory (RSS), a replica serving the view from its watch cache");
    println!("| products | keys | RSS idle | RSS loaded | per object |");
    println!("|---|---|---|---|---|");
    println!(
        "| {products} | {keys} | {:.1} MiB | {:.1} MiB | {:.2} KiB |",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0,
        (loaded.saturating_sub(idle)) as f64 / (products + keys).max(1) as f64
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let c = cluster();
    c.ensure_installed();
    // APIPORTAL_BENCH_ONLY=view,cli,approval,memory picks some (default: all).
    let only = std::env::var("APIPORTAL_BENCH_ONLY").unwrap_or_else(|_| "view,cli,approval,memory".into());
    let wanted = |name: &str| only.split(',').any(|o| o.trim() == name);
    hold_bench_lease().await;
    let sizes = env_list("APIPORTAL_BENCH_PRODUCTS", "1000,10000");
    let approvals = env_list("APIPORTAL_BENCH_APPROVALS", "1000")[0];
    if wanted("approval") {
        approval_benchmark(published_stage().await, approvals, 0).await;
    }
    // Published (and its plans discovered) before the view and CLI benchmarks' products exist, so the leader that
    // issues its backlog meets only never-reconciled products.
    let backlog_stage =
        if wanted("approval") && (wanted("view") || wanted("cli")) { Some(published_stage().await) } else { None };
    if wanted("view") || wanted("cli") {
        if wanted("view") {
            view_benchmark(&sizes).await;
        }
        if wanted("cli") {
            let cli_ns = c.namespace("bench-cli").await;
            create_products(&cli_ns, sizes.first().copied().unwrap_or(1000)).await;
            cli_benchmark(&cli_ns);
        }
    }
    // The view and CLI benchmarks ran under a follower: their products wait for the next leader.
    if let Some(stage) = backlog_stage {
        let backlog = if wanted("view") { sizes.iter().sum::<usize>() } else { 0 }
            + if wanted("cli") { sizes.first().copied().unwrap_or(1000) } else { 0 };
        approval_benchmark(stage, approvals, backlog).await;
    }
    if wanted("memory") {
        memory_benchmark(*sizes.last().unwrap_or(&10_000), env_list("APIPORTAL_BENCH_KEYS", "50000")[0]).await;
    }
}
