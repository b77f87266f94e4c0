//! The bridge's HTTP side as an attacker and a platform team meet it: fetches that cannot be turned inward,
//! token floods that cannot make it flood the API server or evict real callers, audience-bound tokens, TLS
//! (and plain HTTP only when asked for), certificates reloaded from their files, and the delegated pattern: a
//! signed-in user's token in, an answer filtered to what that user may see out.

use std::time::Instant;

use apiportal_core::{APIProduct, rbac};
use apiportal_tests::{
    BRIDGE_AUDIENCE, Bridge, FLOODER, Persona, cluster, count_connections, eventually, http_client, http_get, run,
    stage::Stage, try_http_get,
};
use futures::{StreamExt, stream};
use kube::{Api, api::PostParams};
use rand::RngExt;
use serde_json::json;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn openapi_condition(p: &APIProduct) -> Option<(String, String, String)> {
    apiportal_core::resources::conditions::find(p.conditions(), "OpenAPISpecReady")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn fetches_cannot_be_turned_inward_and_echo_nothing() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let stage = Stage::new(c).await;
    let _bridge = Bridge::start(c, &[]).await;
    // A listener on loopback that counts whoever connects to it, in any protocol: nothing may.
    let (port, reached) = count_connections().await;
    let targets = [
        ("apiserver", c.server.clone() + "/api/v1/namespaces/kube-system/secrets"),
        ("metadata", "https://169.254.169.254/latest/meta-data/iam/security-credentials/".into()),
        ("loopback", format!("https://127.0.0.1:{port}/openapi.json")),
        ("by-name", format!("https://localhost:{port}/openapi.json")),
        ("mapped", format!("https://[::ffff:127.0.0.1]:{port}/openapi.json")),
        ("compatible", format!("https://[::127.0.0.1]:{port}/openapi.json")),
        ("nat64", format!("https://[64:ff9b::7f00:1]:{port}/openapi.json")),
        ("nat64-local", format!("https://[64:ff9b:1::7f00:1]:{port}/openapi.json")),
        ("sixtofour", format!("https://[2002:7f00:1::1]:{port}/openapi.json")),
        ("teredo", format!("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}/openapi.json")),
        ("site-local", format!("https://[fec0::1]:{port}/openapi.json")),
    ];
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Owner).await, &stage.shop);
    for (name, url) in &targets {
        let product: APIProduct = serde_json::from_value(json!({
            "apiVersion": apiportal_core::API_VERSION, "kind": "APIProduct", "metadata": {"name": name},
            "spec": {"displayName": name, "targetRef": {"name": "toys"}, "documentation": {"openAPISpecURL": url}}
        }))
        .unwrap();
        products.create(&PostParams::default(), &product).await.unwrap();
    }
    for (name, url) in &targets {
        let p = eventually(30, &format!("{name}'s fetch to be decided"), || async {
            products.get(name).await.ok().filter(|p| openapi_condition(p).is_some())
        })
        .await;
        let (status, reason, message) = openapi_condition(&p).unwrap();
        assert_eq!((status.as_str(), reason.as_str()), ("False", "DestinationRefused"), "{name}: {message}");
        assert!(message.contains("--fetch-allow-cidr"), "says how the platform may allow it: {message}");
        assert!(p.status.as_ref().unwrap().openapi.is_none(), "{name}: nothing kept from {url}");
        if *name == "by-name" {
            // What the name resolved to stays inside the cluster: only the rule that refused it is said.
            assert!(message.contains("loopback address"), "says which rule refused it: {message}");
            for resolved in ["127.0.0.1", "::1,", "::1 "] {
                assert!(!message.contains(resolved), "the refusal repeats what localhost resolved to: {message}");
            }
        }
        let status_text = serde_json::to_string(&p.status).unwrap();
        for echo in ["kind", "Unauthorized", "Forbidden", "Status", "secrets is forbidden"] {
            assert!(
                !status_text.contains(&format!("\"{echo}")),
                "{name}: the status repeats the remote side: {status_text}"
            );
        }
    }
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing connected to the loopback listener");
}

#[tokio::test]
async fn a_flood_of_unknown_tokens_costs_a_bounded_number_of_reviews_and_evicts_nobody() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    // Authentications are cached for a minute, longer than the flood lasts: the reads of /metrics after it
    // count on Prometheus's token still being known (an unknown one would be rate-limited like the junk).
    let bridge = Bridge::start(c, &["--auth-cache-ttl=60s"]).await;
    let backstage = c.backstage_token().await;
    assert_eq!(bridge.get_as("/api/v1/products", &backstage).await.status, 200, "the real caller, authenticated once");
    let reviews_before = bridge.metric("apiportal_bridge_token_reviews_total").await.unwrap();
    const FLOOD: usize = 10_000;
    // One client keeping its connections, as a flooding client would.
    let http = bridge.http();
    let start = Instant::now();
    let statuses: Vec<(bool, u16)> = stream::iter(0..FLOOD)
        .map(|i| {
            let (http, backstage) = (&http, &backstage);
            async move {
                let token = if i % 100 == 0 {
                    backstage.clone()
                } else {
                    (0..40).map(|_| format!("{:x}", rand::rng().random::<u8>())).collect()
                };
                let answer = http_get(http, "/api/v1/products", &[("authorization", &format!("Bearer {token}"))]).await;
                (i % 100 == 0, answer.status)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let seconds = start.elapsed().as_secs_f64();
    let reviews = bridge.metric("apiportal_bridge_token_reviews_total").await.unwrap() - reviews_before;
    let mut junk = std::collections::BTreeMap::<u16, usize>::new();
    for (real, status) in &statuses {
        if *real {
            assert_eq!(*status, 200, "the real caller is served throughout the flood");
        } else {
            *junk.entry(*status).or_default() += 1;
        }
    }
    eprintln!("{FLOOD} requests in {seconds:.1}s: junk tokens by status {junk:?}; TokenReviews sent: {reviews}");
    // 60 unknown tokens a minute per client (the default), with a burst of 60: a minute-long flood costs at most
    // 60 + one per second it lasts, whatever its size.
    let bound = 60.0 + seconds.ceil() + 1.0;
    assert!(reviews <= bound, "{reviews} TokenReviews for the flood, bound {bound}");
    assert_eq!(junk.keys().copied().collect::<Vec<_>>(), [401, 429], "junk is refused: unknown, then rate-limited");
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let bridge = Bridge::start(c, &[]).await;
    let for_the_api_server = c.service_account_token("backstage", "backstage", "https://kubernetes.default.svc").await;
    let answer = bridge.get_as("/api/v1/products", &for_the_api_server).await;
    assert_eq!(answer.status, 401, "a token meant for the API server is not the bridge's: {}", answer.text());
    assert!(answer.text().contains("for audience \\\"apiportal-bridge\\\""), "{}", answer.text());
    let for_the_bridge = c.backstage_token().await;
    assert_eq!(bridge.get_as("/api/v1/products", &for_the_bridge).await.status, 200);
    // A static token (what a leaked kubeconfig holds) carries no audience: refused too.
    assert_eq!(bridge.get_as("/api/v1/products", c.token(Persona::Backstage)).await.status, 401);
}

#[tokio::test]
async fn the_view_serves_tls_and_plain_http_only_when_told() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    // Without a certificate and without --insecure-http the bridge does not start.
    let out = run({
        let mut cmd = std::process::Command::new(apiportal_tests::workspace_bin("apiportal-bridge"));
        cmd.args(["--kubeconfig"]).arg(&c.kubeconfig).args(["--context", "bridge", "--listen=127.0.0.1:0"]);
        cmd
    });
    assert_ne!(out.code, 0);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("pass --tls-cert-file and --tls-key-file"),
        "says what to do: {}{}",
        out.stdout,
        out.stderr
    );
    let bridge = Bridge::start(c, &[]).await;
    assert!(bridge.url.starts_with("https://"));
    let plain = http_client(&bridge.url.replace("https://", "http://"), &c.ca_file());
    let answer = try_http_get(&plain, "/healthz", &[]).await;
    assert!(answer.is_err(), "plain HTTP gets no HTTP answer from the TLS port: {:?}", answer.map(|a| a.status));
    assert_eq!(bridge.get("/healthz", &[]).await.status, 200, "HTTPS does");
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let bridge = Bridge::start(c, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sh = |script: &str| {
        let out = run({
            let mut cmd = std::process::Command::new("bash");
            cmd.args(["-c", script]).current_dir(d);
            cmd
        });
        assert!(out.success(), "{script}: {}", out.stderr);
    };
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=renewed-ca 2>/dev/null");
    sh(
        "openssl req -newkey rsa:2048 -nodes -keyout new.key -out new.csr -subj /CN=127.0.0.1 2>/dev/null && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext && openssl x509 -req -in new.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out new.crt -days 1 -extfile ext 2>/dev/null",
    );
    // A new client (and connection) each time: the certificate is checked at every handshake.
    let trusted_by = |ca: std::path::PathBuf| {
        let url = bridge.url.clone();
        async move { try_http_get(&http_client(&url, &ca), "/healthz", &[]).await.is_ok_and(|a| a.status == 200) }
    };
    assert!(!trusted_by(d.join("ca.crt")).await, "not yet");
    // As a Secret volume updates: new files in place.
    std::fs::copy(d.join("new.key"), &bridge.key_file).unwrap();
    std::fs::copy(d.join("new.crt"), &bridge.cert_file).unwrap();
    eventually(30, "the renewed certificate to be served", || async {
        trusted_by(d.join("ca.crt")).await.then_some(())
    })
    .await;
    assert!(!trusted_by(c.ca_file()).await, "the old one is no longer served");
}

#[tokio::test]
async fn a_signed_in_user_sees_exactly_what_kubectl_shows_them() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    // Behind a Backstage that forwards its users' sign-in tokens, the bridge takes the API server's audience too.
    let bridge = Bridge::start(c, &["--token-audience=apiportal-bridge,https://kubernetes.default.svc"]).await;
    let mine = Stage::new(c).await;
    let theirs = Stage::new(c).await;
    for (stage, name, publish) in
        [(&mine, "a", true), (&mine, "b", true), (&mine, "draft", false), (&theirs, "c", true)]
    {
        let mut args = vec!["-n", stage.shop.as_str(), "product", "create", name, "--route", "toys"];
        if publish {
            args.push("--publish");
        }
        let out = c.apiportal(Persona::Owner, &args).await;
        assert!(out.success(), "{}", out.stderr);
    }
    // Every product is in the bridge's snapshot first: Backstage, which reads the whole catalog, sees the last one
    // created (one watch delivers the products in the order they were written, so the draft is in it too).
    let backstage = c.backstage_token().await;
    let everyone = [(mine.shop.as_str(), "a"), (mine.shop.as_str(), "b"), (theirs.shop.as_str(), "c")];
    eventually(30, "the bridge's snapshot to hold every published product", || async {
        let answer = bridge.get_as("/api/v1/products", &backstage).await;
        let listed = answer.json()["items"].as_array().cloned().unwrap_or_default();
        let holds = |(ns, name): &(&str, &str)| listed.iter().any(|p| p["namespace"] == *ns && p["name"] == *name);
        everyone.iter().all(holds).then_some(())
    })
    .await;
    // frank signs in with the test identity provider; the platform lets him read the catalog of one namespace.
    c.bind_user(&mine.shop, rbac::CATALOG_READER_ROLE, "oidc:frank").await;
    let token = c.oidc_token("frank", &["partners"], BRIDGE_AUDIENCE);
    let answer = eventually(30, "frank's rights to reach the authorizer", || async {
        Some(bridge.get_as("/api/v1/products", &token).await).filter(|a| a.status == 200)
    })
    .await;
    let list = answer.json();
    assert_eq!(
        list["scope"],
        json!({"allNamespaces": false, "namespaces": [mine.shop]}),
        "the answer says what it covers"
    );
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"], "the published products of his namespace, nothing else");

    // kubectl, with the same token, shows him the same namespace's products and refuses the rest.
    let kubectl = |args: &[&str]| {
        run({
            let mut cmd = std::process::Command::new(apiportal_tests::tools_bin().join("kubectl"));
            cmd.arg("--kubeconfig").arg(&c.kubeconfig).args(["--token", &token]).args(args);
            cmd
        })
    };
    let out = kubectl(&[
        "get",
        "apiproducts",
        "-n",
        &mine.shop,
        "-o",
        "jsonpath={range .items[?(@.spec.publishStatus==\"Published\")]}{.metadata.name} {end}",
    ]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), names);
    let out = kubectl(&["get", "apiproducts", "-n", &theirs.shop]);
    assert!(!out.success() && out.stderr.contains("forbidden"), "{out:?}");
    let answer = bridge.get_as(&format!("/api/v1/products?namespace={}", theirs.shop), &token).await;
    assert_eq!(answer.status, 403, "nor through the bridge: {}", answer.text());
    let answer = bridge.get_as(&format!("/api/v1/products/{}/c", theirs.shop), &token).await;
    assert_eq!(answer.status, 403);
}

/// A caller with many namespaces to check (here a ServiceAccount whose namespaced reviews the API server takes as
/// long as the test likes, through a slow authorizer webhook) floods the view. It gets at most its own share of
/// the review slots; Backstage's reads, beside it, keep being answered, and the flooder is the one that waits.
#[tokio::test]
async fn one_caller_flooding_reviews_cannot_starve_backstage() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let authorizer = c.slow_authorizer().await;
    let share = usize::from(apiportal_core::bridge_args::Args::defaults().max_reviews_per_caller);
    let all_slots = apiportal_core::bridge_args::Args::defaults().max_reviews_in_flight;
    let admin = c.client(Persona::Admin).await;
    let (flood_ns, flooder) = FLOODER;
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": flood_ns}})).unwrap();
    Api::all(admin.clone()).create(&PostParams::default(), &namespace).await.unwrap();
    let account: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": flooder}})).unwrap();
    Api::namespaced(admin.clone(), flood_ns).create(&PostParams::default(), &account).await.unwrap();
    // Many namespaces with products: each is a review for a caller without cluster-wide rights.
    for i in 0..12 {
        let ns = c.namespace("flooded").await;
        let product: APIProduct = serde_json::from_value(json!({
            "apiVersion": apiportal_core::API_VERSION, "kind": "APIProduct", "metadata": {"name": "p"},
            "spec": {"displayName": "p", "targetRef": {"name": "r"}, "publishStatus": "Published"}
        }))
        .unwrap();
        Api::<APIProduct>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &product).await.unwrap();
        if i < 2 {
            c.bind_user(&ns, rbac::CATALOG_READER_ROLE, &format!("system:serviceaccount:{flood_ns}:{flooder}")).await;
        }
    }
    let bridge = Bridge::start(c, &[]).await;
    let token = c.service_account_token(flood_ns, flooder, BRIDGE_AUDIENCE).await;
    let floods: Vec<_> = (0..8)
        .map(|_| {
            let (http, token) = (bridge.http(), token.clone());
            tokio::spawn(async move {
                let start = Instant::now();
                let answer =
                    http_get(&http, "/api/v1/products", &[("authorization", &format!("Bearer {token}"))]).await;
                (answer.status, start.elapsed())
            })
        })
        .collect();
    eventually(30, "the flooder's reviews to reach the authorizer", || async {
        (authorizer.held() >= share).then_some(())
    })
    .await;

    let mut backstage = Vec::new();
    for _ in 0..3 {
        // A new token each time: each read needs a TokenReview, and the first a SubjectAccessReview too.
        let token = c.backstage_token().await;
        let start = Instant::now();
        let answer = bridge.get_as("/api/v1/products", &token).await;
        backstage.push((answer.status, start.elapsed()));
    }
    let flooder_waiting = floods.iter().filter(|f| !f.is_finished()).count();
    let most_held = authorizer.most_held();
    authorizer.release();
    let mut flood = Vec::new();
    for f in floods {
        flood.push(f.await.unwrap());
    }
    eprintln!("Backstage's reads during the flood (status, latency): {backstage:?}");
    eprintln!("the flooder's {} requests (status, latency): {flood:?}", flood.len());
    eprintln!("reviews of the flooder held at once: {most_held} (its share {share}, all slots {all_slots})");
    assert!(
        backstage.iter().all(|(status, _)| *status == 200),
        "Backstage is answered beside the flood: {backstage:?}"
    );
    assert_eq!(flooder_waiting, 8, "the flooder's own requests are the ones waiting");
    assert_eq!(most_held, share, "one caller holds its share of the review slots, never more");
}

async fn as_owner(args: &[&str]) {
    let out = cluster().apiportal(Persona::Owner, args).await;
    assert!(out.success(), "{args:?}: {}", out.stderr);
}

/// Changes since a version (`GET /api/v1/products?since=`), as an attacker with the rights of one namespace
/// meets them: while products of a namespace they may not list are deleted, unpublished and created, the changes
/// they are told name only their own namespace's products, exactly what their full list would show; a version
/// the bridge never built, or one of another caller's scope, is 410 and names nothing; a second replica at the
/// same products answers from the same version.
#[tokio::test]
async fn changes_since_a_version_tell_a_caller_only_what_they_may_list() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let bridge = Bridge::start(c, &["--token-audience=apiportal-bridge,https://kubernetes.default.svc"]).await;
    let mine = Stage::new(c).await;
    let theirs = Stage::new(c).await;
    for (stage, name) in [(&mine, "a"), (&theirs, "deleted"), (&theirs, "unpublished")] {
        as_owner(&["-n", &stage.shop, "product", "create", name, "--route", "toys", "--publish"]).await;
    }
    // A user of this test alone: another test's grants to the same name would widen what he may list.
    let user = format!("frank-{}", mine.shop);
    c.bind_user(&mine.shop, rbac::CATALOG_READER_ROLE, &format!("oidc:{user}")).await;
    let token = c.oidc_token(&user, &["partners"], BRIDGE_AUDIENCE);
    let held = eventually(30, "frank's list with his product", || async {
        let answer = bridge.get_as("/api/v1/products", &token).await;
        (answer.status == 200 && answer.json()["items"].as_array().is_some_and(|i| i.len() == 1)).then(|| answer.json())
    })
    .await;
    let since = held["version"].as_str().unwrap().to_owned();
    let backstage_version = eventually(30, "the cluster-wide list with every product", || async {
        let answer = bridge.get_as("/api/v1/products", &c.backstage_token().await).await;
        let names = answer.json()["items"].as_array().map(|i| i.len()).unwrap_or_default();
        (answer.status == 200 && names >= 3).then(|| answer.json()["version"].as_str().unwrap().to_owned())
    })
    .await;
    assert_ne!(backstage_version, since, "a version belongs to its caller's scope");

    // Their namespace changes in every way; his changes too.
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Admin).await, &theirs.shop);
    products.delete("deleted", &Default::default()).await.unwrap();
    as_owner(&["-n", &theirs.shop, "product", "unpublish", "unpublished"]).await;
    as_owner(&["-n", &theirs.shop, "product", "create", "fresh", "--route", "toys", "--publish"]).await;
    as_owner(&["-n", &mine.shop, "product", "create", "b", "--route", "toys", "--publish"]).await;
    as_owner(&["-n", &mine.shop, "product", "unpublish", "a"]).await;
    let path = format!("/api/v1/products?since={since}");
    let secrets = [theirs.shop.as_str(), "deleted", "unpublished", "fresh"];
    let changes = eventually(30, "frank's changes to show his namespace's", || async {
        let answer = bridge.get_as(&path, &token).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        // Every answer on the way, not only the last, names nothing of theirs.
        for secret in secrets {
            assert!(!answer.text().contains(secret), "frank's changes name {secret:?}: {}", answer.text());
        }
        let changes = answer.json();
        (changes["items"].as_array().unwrap().len() == 1 && changes["removed"].as_array().unwrap().len() == 1)
            .then_some(changes)
    })
    .await;
    assert_eq!(changes["since"], since);
    assert_eq!(changes["items"][0]["name"], "b");
    assert_eq!(changes["removed"], json!([{"namespace": mine.shop, "name": "a", "uid": held["items"][0]["uid"]}]));
    let now = bridge.get_as("/api/v1/products", &token).await.json();
    assert_eq!(changes["version"], now["version"], "the changes bring his list to the version of his list now");
    assert_eq!(now["items"].as_array().unwrap().iter().map(|p| &p["name"]).collect::<Vec<_>>(), ["b"]);

    // Versions he cannot be answered from: 410, naming nothing; a malformed one is 400.
    let made_up = format!("{}.{}", "0".repeat(32), &since[33..]);
    for version in [made_up.as_str(), backstage_version.as_str()] {
        let answer = bridge.get_as(&format!("/api/v1/products?since={version}"), &token).await;
        assert_eq!(answer.status, 410, "{}", answer.text());
        assert_eq!(answer.json()["error"]["code"], "Expired");
        assert!(!answer.text().contains(&theirs.shop), "{}", answer.text());
    }
    let answer = bridge.get_as("/api/v1/products?since=yesterday", &token).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert!(answer.text().contains("send back exactly the version"), "{}", answer.text());

    // Another replica (or this one restarted) at the same products answers from the same version. The leader may
    // still be writing the products' status, which moves the version on both: compare at a moment they agree.
    let replica = Bridge::start(c, &["--token-audience=apiportal-bridge,https://kubernetes.default.svc"]).await;
    let (answer, current) = eventually(30, "the replica to answer from the first bridge's version", || async {
        let current = bridge.get_as("/api/v1/products", &token).await.json()["version"].as_str()?.to_owned();
        let answer = replica.get_as(&format!("/api/v1/products?since={current}"), &token).await;
        (answer.status == 200).then_some((answer, current))
    })
    .await;
    assert_eq!(answer.json()["version"], current.as_str());
    assert_eq!((answer.json()["items"].clone(), answer.json()["removed"].clone()), (json!([]), json!([])));
}
