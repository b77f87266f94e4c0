//! Backstage across two clusters: a real Backstage backend (a fresh backend package with the module installed from
//! its packed tarball, as a user installs it; `backstage-module/e2e/backend.sh`) reading two real bridges on two
//! real API servers, over HTTPS with each cluster's CA and an audience-bound ServiceAccount token from a file.
//! Every mapped field of a real product is checked through Backstage's own catalog API; one cluster going down
//! keeps its entities and leaves the other's moving; the same namespace/name in both clusters are two entities;
//! a rotated token file is used without a restart; an unpublished product leaves the catalog.

use std::{path::Path, process::Stdio, time::Duration};

use apiportal_core::APIProduct;
use apiportal_tests::{
    BRIDGE_AUDIENCE, Bridge, Cluster, HttpClient, Persona, cluster, eventually, http_client, http_get, other_cluster,
    repo_root, run, serve_documents, stage::Stage,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const NAMESPACE: &str = "shop-same";
const BACKSTAGE_TOKEN: &str = "apiportal-e2e-token";

/// A real Backstage backend, stopped (SIGTERM) when dropped.
struct Backstage {
    child: tokio::process::Child,
    http: HttpClient,
    /// What it logged so far (also passed on to the test's stderr).
    logs: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Backstage {
    async fn start(config: &Path) -> Self {
        let cache = apiportal_tests::tools_bin().parent().expect("the cache folder").join("backstage-e2e");
        let prepared = run({
            let mut cmd = std::process::Command::new(repo_root().join("backstage-module/e2e/backend.sh"));
            cmd.arg(&cache);
            cmd
        });
        assert!(prepared.success(), "preparing the Backstage backend failed:\n{}", prepared.stderr);
        let command = prepared.stdout.lines().last().expect("the start command").to_owned();
        let mut parts = command.split_whitespace();
        let mut child = tokio::process::Command::new(parts.next().unwrap())
            .args(parts)
            .arg(config)
            .env("APIPORTAL_BACKSTAGE_TOKEN", BACKSTAGE_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start Backstage");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let kept = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                eprintln!("{line}");
                let mut logs = kept.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.to_owned();
                }
            }
            panic!("Backstage exited before it was ready")
        })
        .await
        .expect("Backstage ready within 2 minutes");
        Self { child, http: http_client(&url, &cluster().ca_file()), logs }
    }

    /// The lines it logged that contain every one of `parts`.
    fn logged(&self, parts: &[&str]) -> usize {
        self.logs.lock().unwrap().lines().filter(|l| parts.iter().all(|p| l.contains(p))).count()
    }

    /// Every `kind: API` entity in the catalog, by name.
    async fn apis(&self) -> std::collections::BTreeMap<String, Value> {
        let answer = http_get(
            &self.http,
            "/api/catalog/entities/by-query?filter=kind=api",
            &[("authorization", &format!("Bearer {BACKSTAGE_TOKEN}"))],
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["metadata"]["name"].as_str().unwrap().to_owned(), e.clone()))
            .collect()
    }
}

impl Drop for Backstage {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
    }
}

/// Writes a file the way a projected volume updates one: a new file renamed over the old.
fn replace_file(path: &Path, content: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, content).unwrap();
    std::fs::rename(&next, path).unwrap();
}

async fn product(c: &Cluster, stage: &Stage, name: &str, display: &str, openapi_url: &str) {
    let out = stage
        .create_product(
            c,
            name,
            &[
                "--display-name",
                display,
                "--description",
                "Browse and order toys.",
                "--version",
                "v1",
                "--tag",
                "retail",
                "--tag",
                "toys",
                "--team",
                "toys-team",
                "--docs-url",
                "https://docs.example.com/toys",
                "--openapi-url",
                openapi_url,
                "--approval",
                "automatic",
                "--publish",
            ],
        )
        .await;
    assert!(out.success(), "{}", out.stderr);
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Owner).await, &stage.shop);
    let labels = json!({"metadata": {"labels": {"lifecycle": "experimental", "system": "storefront"}}});
    products.patch(name, &PatchParams::default(), &Patch::Merge(&labels)).await.unwrap();
    stage.wait_for_plans(c, name).await;
}

#[tokio::test]
async fn one_backstage_reads_two_clusters_and_keeps_each_ones_entities() {
    assert!(
        repo_root().join("backstage-module/node_modules").exists(),
        "backstage-module/node_modules is missing: run backstage-module/test.sh first (scripts/test does)"
    );
    let (east, west) = (cluster(), other_cluster());
    let fetch = ["--fetch-allow-cidr=127.0.0.1/32", "--fetch-allow-http"];
    // East caches authentications for a second only, so a token made invalid stops working at once.
    let east_bridge = Bridge::start(east, &[fetch[0], fetch[1], "--auth-cache-ttl=1s"]).await;
    let mut west_bridge = Bridge::start(west, &fetch).await;
    let spec = "openapi: 3.0.3\ninfo: {title: Toys API, version: v1}\npaths:\n  /toys: {get: {summary: List toys}}\n";
    let docs = serve_documents(vec![("/openapi.yaml".into(), spec.to_owned())]).await;
    let east_stage = Stage::named(east, NAMESPACE, "team-same").await;
    let west_stage = Stage::named(west, NAMESPACE, "team-same").await;
    product(east, &east_stage, "toys", "Toys API", &format!("{docs}/openapi.yaml")).await;
    product(west, &west_stage, "toys", "Toys API (west)", &format!("{docs}/openapi.yaml")).await;
    // A consumer of the east product: its count shows on the entity.
    let out = east
        .apiportal(
            Persona::Consumer,
            &["-n", "team-same", "request", &format!("{NAMESPACE}/toys"), "--plan", "gold", "--wait=60s"],
        )
        .await;
    assert!(out.success(), "{}", out.stderr);

    let dir = tempfile::tempdir().unwrap();
    let token_file = |name: &str| dir.path().join(format!("{name}.token"));
    let first_token =
        east.bound_service_account_token("backstage", "backstage", BRIDGE_AUDIENCE, "backstage-token-a").await;
    replace_file(&token_file("east"), &first_token);
    replace_file(&token_file("west"), &west.backstage_token().await);
    let provider = |bridge: &Bridge, name: &str, c: &Cluster| {
        json!({"baseUrl": bridge.url, "tokenFile": token_file(name), "caFile": c.ca_file(), "cluster": name,
               "schedule": {"frequency": {"seconds": 1}, "timeout": {"seconds": 30}},
               // The platform's mapping of namespaces gives the owner; the system comes from the product's label.
               "owner": {"namespaces": {NAMESPACE: "group:default/toys-team"}}, "system": {"from": ["label"]}})
    };
    let config = json!({"catalog": {"providers": {"apiportal": {
        "east": provider(&east_bridge, "east", east),
        "west": provider(&west_bridge, "west", west),
    }}}});
    let config_file = dir.path().join("app-config.yaml");
    std::fs::write(&config_file, serde_saphyr::to_string(&config).unwrap()).unwrap();
    let backstage = Backstage::start(&config_file).await;

    // The same namespace/name in both clusters: two entities.
    let apis = eventually(90, "both clusters' products in the catalog", || async {
        let apis = backstage.apis().await;
        let consumers = apis
            .get("east--shop-same--toys")
            .and_then(|e| e["metadata"]["annotations"]["apiportal.dev/consumers"].as_str().map(str::to_owned));
        (apis.contains_key("west--shop-same--toys") && consumers.as_deref() == Some("1")).then_some(apis)
    })
    .await;
    let entity = &apis["east--shop-same--toys"];
    let uid = Api::<APIProduct>::namespaced(east.client(Persona::Admin).await, NAMESPACE)
        .get("toys")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let metadata = &entity["metadata"];
    assert_eq!(metadata["title"], "Toys API");
    assert_eq!(apis["west--shop-same--toys"]["metadata"]["title"], "Toys API (west)");
    assert_eq!(metadata["description"], "Browse and order toys.");
    assert_eq!(metadata["tags"], json!(["retail", "toys", "apiportal"]));
    assert_eq!(
        metadata["links"],
        json!([
            {"url": "https://docs.example.com/toys", "title": "Documentation", "icon": "docs", "type": "documentation"},
            {"url": format!("{docs}/openapi.yaml"), "title": "OpenAPI specification", "icon": "code", "type": "openapi"}
        ])
    );
    let annotations = &metadata["annotations"];
    for (key, value) in [
        ("apiportal.dev/cluster", "east"),
        ("apiportal.dev/product-namespace", NAMESPACE),
        ("apiportal.dev/product-name", "toys"),
        ("apiportal.dev/product-uid", uid.as_str()),
        ("kuadrant.io/namespace", NAMESPACE),
        ("kuadrant.io/apiproduct", "toys"),
        ("apiportal.dev/approval-mode", "automatic"),
        ("apiportal.dev/auth-scheme", "api-key"),
        ("apiportal.dev/consumers", "1"),
        ("apiportal.dev/consumers-by-plan", "{\"gold\":1}"),
    ] {
        assert_eq!(annotations[key], value, "{key}: {annotations}");
    }
    let plans: Value = serde_json::from_str(annotations["apiportal.dev/plans"].as_str().unwrap()).unwrap();
    assert_eq!(plans, json!([{"tier": "gold", "limits": {"daily": 100}}, {"tier": "bronze", "limits": {"daily": 10}}]));
    let spec_field = &entity["spec"];
    assert_eq!(spec_field["type"], "openapi");
    assert_eq!(spec_field["owner"], "group:default/toys-team", "the platform's owner of the namespace");
    assert_eq!(spec_field["lifecycle"], "experimental", "the product's lifecycle label");
    assert_eq!(spec_field["system"], "storefront", "the product's system label");
    assert_eq!(spec_field["definition"], spec, "the document the bridge fetched");

    // A rotated token file is picked up without a restart: the old token is made invalid, and changes keep
    // arriving.
    replace_file(
        &token_file("east"),
        &east.bound_service_account_token("backstage", "backstage", BRIDGE_AUDIENCE, "backstage-token-b").await,
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(east.client(Persona::Admin).await, "backstage");
    secrets.delete("backstage-token-a", &DeleteParams::default()).await.unwrap();
    // The old token is dead once the bridge refuses it (its authentication cache lasts a second here): from then on
    // only the new token read from the file can bring changes.
    eventually(30, "the bridge to refuse the old token", || async {
        (east_bridge.get_as("/api/v1/products", &first_token).await.status == 401).then_some(())
    })
    .await;
    let out = east
        .apiportal(
            Persona::Owner,
            &[
                "-n",
                NAMESPACE,
                "product",
                "create",
                "games",
                "--route",
                "toys",
                "--display-name",
                "Games API",
                "--publish",
            ],
        )
        .await;
    assert!(out.success(), "{}", out.stderr);
    eventually(60, "a product published after the rotation to arrive", || async {
        backstage.apis().await.contains_key("east--shop-same--games").then_some(())
    })
    .await;

    // One cluster down: its entities stay, the other cluster's keep changing.
    west_bridge.kill9();
    let out = east.apiportal(Persona::Owner, &["-n", NAMESPACE, "product", "unpublish", "games"]).await;
    assert!(out.success(), "{}", out.stderr);
    let apis = eventually(60, "the unpublished product to leave", || async {
        let apis = backstage.apis().await;
        (!apis.contains_key("east--shop-same--games")).then_some(apis)
    })
    .await;
    assert!(apis.contains_key("west--shop-same--toys"), "the unreachable cluster's entities stay: {:?}", apis.keys());
    assert!(apis.contains_key("east--shop-same--toys"));
    // It left through what the real bridge said changed since the version the module held: a delta mutation.
    assert_eq!(
        backstage.logged(&["applied changes to API entities from cluster east", "0 added or changed, 1 removed"]),
        1,
        "one delta removed the unpublished product"
    );
}
