//! Malformed input, thousands of times: requests to the bridge's view (paths, queries, headers, tokens, bodies,
//! methods, raw garbage on the socket) and malformed objects to the API server. Every well-formed request gets an
//! answer and none a 5xx; raw garbage gets a 400 or a closed connection, never anything else; nothing panics (the
//! bridge counts its panics), and no key leaks into any answer.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use apiportal_core::KeyPhase;
use apiportal_tests::{Bridge, Persona, cluster, shared_bridge, stage::Stage};
use kube::{Api, api::PostParams};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

const PATHS: &[&str] = &[
    "/api/v1/products",
    "/api/v1/products/",
    "/api/v1/products/a/b",
    "/api/v1/products/a/b/openapi",
    "/api/v1/keys",
    "/api/v1/",
    "/api/",
    "/api/v1/products/../../etc/passwd",
    "/api/v1/products/%00/x",
    "/api/v1/products/A/B",
    "/api/v1/products/a/b/c/d",
    "//api//v1//products",
    "/healthz",
    "/readyz",
    "/metrics",
    "/",
    "/api/v1/keys/x",
];
const QUERIES: &[&str] = &[
    "",
    "?namespace=",
    "?namespace=UPPER",
    "?namespace=a/b",
    "?all=maybe",
    "?all=true",
    "?phase=Pending",
    "?phase=",
    "?product=nope",
    "?product=a/b/c",
    "?x=y",
    "?namespace=%ff%fe",
    "?&&&",
    "?namespace=default&namespace=other",
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"];

fn random_text(rng: &mut StdRng, max: usize) -> String {
    let len = rng.random_range(0..max);
    (0..len).map(|_| char::from(rng.random_range(0x20u8..0x7f))).collect()
}

/// Sends raw bytes and returns the status code of the answer (0 when the server closed without one). Raw
/// garbage is followed by a half-close so an incomplete request cannot keep the connection waiting; a
/// server may then drop it without an answer, as hyper does.
fn send(addr: &str, request: &[u8], garbage: bool) -> u16 {
    let Ok(mut stream) = TcpStream::connect(addr) else { return 0 };
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = stream.write_all(request);
    if garbage {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn thousands_of_malformed_requests_get_no_5xx_and_leak_nothing() {
    let c = cluster();
    let bridge = shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    let out = c
        .apiportal(
            Persona::Consumer,
            &["-n", &stage.team, "request", &format!("{}/toys", stage.shop), "--plan", "gold", "--wait=30s"],
        )
        .await;
    assert!(out.success(), "{}", out.stderr);
    let key = c
        .apiportal(Persona::Consumer, &["-n", &stage.team, "key", "show", "toys-gold", "--reveal"])
        .await
        .stdout
        .trim()
        .to_owned();
    assert_eq!(key.len(), 43);

    // The HTTP layer is fuzzed in clear on a second replica (a follower of the same Lease, serving the same
    // view) started for local use with --insecure-http; the TLS port gets its own garbage below.
    let plain =
        Bridge::start(c, &["--insecure-http", "--token-audience=apiportal-bridge,https://kubernetes.default.svc"])
            .await;
    let addr = plain.url.trim_start_matches("http://").to_owned();
    let backstage = c.backstage_token().await;
    let tokens = [
        String::new(),
        "garbage".into(),
        backstage.clone(),
        c.oidc_token("mallory", &[], "apiportal-bridge"),
        "x".repeat(9000),
    ];
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    const REQUESTS: usize = 2000;
    let bridge_addr = addr.clone();
    let key_for_check = key.clone();
    let results = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for i in 0..REQUESTS {
            let method = METHODS[rng.random_range(0..METHODS.len())];
            let mut path =
                format!("{}{}", PATHS[rng.random_range(0..PATHS.len())], QUERIES[rng.random_range(0..QUERIES.len())]);
            if i % 7 == 0 {
                path.push_str(&random_text(&mut rng, 40).replace([' ', '#'], "%20"));
            }
            let token = &tokens[rng.random_range(0..tokens.len())];
            let mut request = format!("{method} {path} HTTP/1.1\r\nHost: bridge\r\n");
            match rng.random_range(0..4) {
                0 => request.push_str(&format!("Authorization: Bearer {token}\r\n")),
                1 => request.push_str(&format!("Authorization: {}\r\n", random_text(&mut rng, 60))),
                2 => request.push_str(&format!("If-None-Match: {}\r\n", random_text(&mut rng, 60))),
                _ => {}
            }
            let body = if rng.random_bool(0.3) { random_text(&mut rng, 200) } else { String::new() };
            request.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
            let garbage = i % 50 == 0;
            let raw: Vec<u8> = if garbage {
                (0..rng.random_range(1..300)).map(|_| rng.random::<u8>()).collect()
            } else {
                request.into_bytes()
            };
            out.push((send(&bridge_addr, &raw, garbage), garbage, String::from_utf8_lossy(&raw).into_owned()));
        }
        out
    })
    .await
    .unwrap();
    let mut garbage_codes = std::collections::BTreeMap::<u16, usize>::new();
    for (code, garbage, request) in &results {
        if *garbage {
            *garbage_codes.entry(*code).or_default() += 1;
            assert!(
                *code == 0 || *code == 400,
                "raw garbage got {code}, not a 400 or a closed connection: {request:?}"
            );
        } else {
            *codes.entry(*code).or_default() += 1;
            assert!(*code != 0, "no answer to a well-formed HTTP request: {request:?}");
            assert!(*code < 500, "a {code} for {request:?}");
        }
    }
    eprintln!(
        "view answers to {REQUESTS} malformed requests by status: well-formed {codes:?}, raw garbage {garbage_codes:?} (0: dropped)"
    );
    assert_eq!(garbage_codes.values().sum::<usize>(), REQUESTS / 50, "the raw garbage was sent");

    // Authorised reads never contain the key.
    let admin = c.oidc_token("carol", &["apiportal:admins"], "apiportal-bridge");
    let prometheus = c.prometheus_token().await;
    let product_path = format!("/api/v1/products/{}/toys", stage.shop);
    for (path, token) in [
        ("/api/v1/products", &backstage),
        ("/api/v1/keys", &admin),
        (product_path.as_str(), &backstage),
        ("/metrics", &prometheus),
    ] {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(!answer.contains(&key_for_check), "{path} leaks the key");
    }
    // Garbage instead of a TLS handshake: the connection is dropped, the bridge carries on.
    let tls_addr = bridge.url.trim_start_matches("https://").to_owned();
    let mut rng = StdRng::seed_from_u64(0x7157);
    for _ in 0..200 {
        let raw: Vec<u8> = (0..rng.random_range(1..600)).map(|_| rng.random::<u8>()).collect();
        let addr = tls_addr.clone();
        let code = tokio::task::spawn_blocking(move || send(&addr, &raw, true)).await.unwrap();
        assert_eq!(code, 0, "garbage instead of a TLS handshake got an HTTP answer");
    }
    assert_eq!(bridge.get("/healthz", &[]).await.status, 200, "still serving after the garbage");
    for bridge in [bridge, &plain] {
        bridge.assert_healthy().await;
        assert!(!bridge.logs().contains(&key), "the bridge logged the key");
    }

    // Malformed objects to the API server: each refused with a 4xx and the schema's message, none stored.
    let raw_client = c.client(Persona::Admin).await;
    let mut rng = StdRng::seed_from_u64(7);
    let junk = |rng: &mut StdRng| -> Value {
        match rng.random_range(0..6) {
            0 => json!(null),
            1 => json!(rng.random::<i64>()),
            2 => json!(random_text(rng, 300)),
            3 => json!([random_text(rng, 10), 1, null]),
            4 => json!({"nested": {"deep": random_text(rng, 20)}}),
            _ => json!(true),
        }
    };
    let mut refused = 0;
    for i in 0..300 {
        let mut spec = json!({"displayName": "X", "targetRef": {"name": "toys"}});
        let field = [
            "displayName",
            "targetRef",
            "approvalMode",
            "publishStatus",
            "tags",
            "documentation",
            "contact",
            "version",
        ][i % 8];
        spec[field] = junk(&mut rng);
        let (plural, kind, spec) = if i % 2 == 0 {
            ("apiproducts", "APIProduct", spec)
        } else {
            let mut key = json!({"apiProductRef": {"name": "toys"}, "planTier": "gold", "requestedBy": {"userId": "harness-admin"}});
            key[["apiProductRef", "planTier", "requestedBy", "expiresAt", "useCase"][i % 5]] = junk(&mut rng);
            ("apikeys", "APIKey", key)
        };
        let object = json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": kind, "metadata": {"name": format!("junk-{i}")}, "spec": spec});
        let url = format!("/apis/devportal.kuadrant.io/v1alpha1/namespaces/{}/{plural}", stage.team);
        let request =
            kube::core::Request::new(url).create(&PostParams::default(), serde_json::to_vec(&object).unwrap()).unwrap();
        match raw_client.request::<Value>(request).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) => {
                assert!((400..500).contains(&status.code), "malformed {kind} got {}: {}", status.code, status.message);
                refused += 1;
            }
            Err(e) => panic!("the API server failed on a malformed {kind}: {e}"),
        }
    }
    eprintln!("API server refused {refused} of 300 malformed objects (the rest were valid by chance)");
    assert!(refused > 200, "most junk is refused");
    let keys: Api<apiportal_core::APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    assert_eq!(keys.get("toys-gold").await.unwrap().phase(), KeyPhase::Approved, "the real key is unaffected");
}
