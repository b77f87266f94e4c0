//! `kubectl apiportal` end to end: the real plugin binary, each persona with its own token, against the real
//! API server with the real bridge reconciling.

use apiportal_core::{APIKey, APIProduct, KeyPhase, labels, resources::apikeyrequest::APIKeyRequest};
use apiportal_tests::{
    Persona, api_error_code, api_error_message, cluster, eventually,
    fixtures::{consumer_secret, value, wait_issued, wait_projected, wait_ready_reason},
    receive_posts, serve_documents, shared_bridge,
    stage::Stage,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;

/// The owner creates and publishes a product over the stage's route; waits until the bridge found its plans.
async fn published_product(stage: &Stage, name: &str, approval: &str) {
    let c = cluster();
    let out = stage
        .create_product(c, name, &["--display-name", "Toys API", "--approval", approval, "--team", "toys-team"])
        .await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), format!("apiproduct.devportal.kuadrant.io/{name} created"));
    let out = c.apiportal(stage.owner, &["-n", &stage.shop, "product", "publish", name]).await;
    assert!(out.success(), "{}", out.stderr);
    // `describe product` shows both tiers and how to send the key.
    stage
        .wait_for_product(c, name, "both plans and the API-key scheme", |p| {
            p.plans().len() == 2 && p.status.as_ref().is_some_and(|s| s.discovered_auth_scheme.is_some())
        })
        .await;
}

#[tokio::test]
async fn consumer_browses_requests_and_reveals_a_key_for_an_automatic_product() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    published_product(&stage, "toys", "automatic").await;

    let out = c.apiportal(Persona::Consumer, &["products", "-A"]).await;
    assert!(out.success(), "{}", out.stderr);
    let header: Vec<&str> =
        out.stdout.lines().next().unwrap().split("   ").map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(header, ["NAMESPACE", "NAME", "DISPLAY NAME", "VERSION", "APPROVAL", "PLANS", "AGE"]);
    let row = out.stdout.lines().find(|l| l.starts_with(&stage.shop)).expect("the published product is listed");
    assert!(row.contains("Toys API") && row.contains("automatic") && row.contains("gold,bronze"), "{row}");

    let out = c.apiportal(Persona::Consumer, &["describe", "product", &format!("{}/toys", stage.shop)]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("gold     100/day"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("curl -H 'Authorization: APIKEY '\"$API_KEY\" https://{}/", stage.host("toys"))),
        "a consumer, who may not read the route, gets a ready-to-paste call: {}",
        out.stdout
    );

    let product = format!("{}/toys", stage.shop);
    let out = c
        .apiportal(
            Persona::Consumer,
            &["-n", &stage.team, "request", &product, "--plan", "platinum", "--use-case", "x"],
        )
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("offers no plan tier \"platinum\"; it offers: gold, bronze"), "{}", out.stderr);

    let out = c
        .apiportal(
            Persona::Consumer,
            &["-n", &stage.team, "request", &product, "--plan", "gold", "--use-case", "stock sync", "--wait=30s"],
        )
        .await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stderr.contains("approved"), "{}", out.stderr);

    let out = c.apiportal(Persona::Consumer, &["-n", &stage.team, "key", "show", "toys-gold", "--reveal"]).await;
    assert!(out.success(), "{}", out.stderr);
    let key = out.stdout.trim_end_matches('\n');
    assert_eq!(out.stdout.lines().count(), 1, "--reveal prints only the key");
    assert_eq!(key.len(), 43);
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));

    let out = c.apiportal(Persona::Consumer, &["-n", &stage.team, "key", "show", "toys-gold"]).await;
    assert!(
        out.success() && out.stdout.contains("Approved") && !out.stdout.contains(key),
        "show without --reveal never prints the key"
    );

    // Idempotent: the same request again changes nothing.
    let out = c
        .apiportal(
            Persona::Consumer,
            &["-n", &stage.team, "request", &product, "--plan", "gold", "--use-case", "stock sync"],
        )
        .await;
    assert!(out.success());
    assert_eq!(out.stdout.trim(), "apikey.devportal.kuadrant.io/toys-gold unchanged");

    let out = c.apiportal(Persona::Consumer, &["-n", &stage.team, "revoke", "toys-gold"]).await;
    assert!(out.success(), "{}", out.stderr);
    let out = c.apiportal(Persona::Consumer, &["-n", &stage.team, "revoke", "toys-gold"]).await;
    assert!(out.success() && out.stderr.contains("nothing to revoke"), "revoking twice is a no-op: {}", out.stderr);
}

/// What `describe` prints after `label`, and the lines that continue it (aligned under it, unlabelled): the
/// commands to paste and, under them, the notes (shell comments) about values they do not show.
fn printed_commands(describe: &str, label: &str) -> Vec<String> {
    let mut lines = describe.lines().skip_while(|l| !l.trim_start().starts_with(label));
    let first = lines.next().unwrap_or_else(|| panic!("no {label:?} line in:\n{describe}"));
    let mut commands = vec![first.trim_start().trim_start_matches(label).trim().to_owned()];
    let continues = |l: &&str| l.len() - l.trim_start().len() >= 6;
    commands.extend(lines.take_while(continues).map(|l| l.trim().to_owned()));
    commands
}

#[tokio::test]
async fn the_commands_describe_prints_work_as_pasted() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    published_product(&stage, "toys", "automatic").await;
    let out = c.apiportal(Persona::Consumer, &["describe", "product", &format!("{}/toys", stage.shop)]).await;
    assert!(out.success(), "{}", out.stderr);
    let get_a_key = printed_commands(&out.stdout, "Get a key:");
    let call_it = printed_commands(&out.stdout, "Call it:");
    assert_eq!((get_a_key.len(), call_it.len()), (2, 1), "{}", out.stdout);

    // The gateway is played by a local server: `curl` in the pasted line goes there instead of the API's host.
    let (gateway, received) = receive_posts().await;
    let script = format!(
        "curl() {{ local args=(); for a in \"$@\"; do args+=(\"${{a//https:\\/\\/{}\\//$GATEWAY/}}\"); done; command curl -sf \"${{args[@]}}\"; }}\n{}\n{}\n",
        stage.host("toys"),
        get_a_key.join("\n"),
        call_it[0]
    );
    let out = c.shell(Persona::Consumer, &stage.team, &script, &[("GATEWAY", gateway.trim_end_matches('/'))]).await;
    assert!(out.success(), "the pasted commands fail:\n{script}\n{}", out.stderr);

    let revealed = c.apiportal(Persona::Consumer, &["-n", &stage.team, "key", "show", "toys-gold", "--reveal"]).await;
    let key = revealed.stdout.trim();
    assert_eq!(key.len(), apiportal_core::keygen::KEY_LEN, "the pasted request got a key: {}", revealed.stderr);
    let calls = received.lock().unwrap();
    assert_eq!(calls.len(), 1, "the pasted call reached the gateway once");
    assert_eq!(
        calls[0].headers.get("authorization").map(String::as_str),
        Some(format!("APIKEY {key}").as_str()),
        "the call carries the key itself, where the AuthPolicy reads it"
    );
}

/// A PlanPolicy's tier, an AuthPolicy's credential prefix and header name, an identity provider's token endpoint:
/// values other people choose, which `describe` puts into commands a consumer pastes. Pasted into a real shell,
/// the printed lines run exactly the commands shown (`curl` is a stub that records its arguments) and nothing
/// the values smuggle in.
#[tokio::test]
async fn pasted_commands_run_nothing_but_themselves_whatever_the_values() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.plans(c, "toys", json!([{"tier": "gold;`touch pwned-by-tier`", "limits": {"daily": 100}}])).await;
    let prefix = json!({"authorizationHeader": {"prefix": "APIKEY\" $(touch pwned-by-prefix) \""}});
    stage.api_key_policy_taking(c, "toys", "toys", prefix).await;
    stage.route(c, "widgets", &[&stage.host("widgets")]).await;
    let header = json!({"customHeader": {"name": "X-Key$(touch pwned-by-header)"}});
    stage.api_key_policy_taking(c, "widgets", "widgets", header).await;
    stage.route(c, "ledger", &[&stage.host("ledger")]).await;
    let discovery = json!({"issuer": "https://sso.example.com",
                           "token_endpoint": "https://sso.example.com/token'$(touch pwned-by-endpoint)'"});
    let idp = serve_documents(vec![("/.well-known/openid-configuration".into(), discovery.to_string())]).await;
    stage.jwt_policy(c, "ledger", &idp).await;
    for (product, route) in [("toys", "toys"), ("widgets", "widgets"), ("ledger", "ledger")] {
        let args = ["-n", &stage.shop, "product", "create", product, "--route", route, "--publish"];
        let out = c.apiportal(Persona::Owner, &args).await;
        assert!(out.success(), "{}", out.stderr);
    }
    let scheme = |p: &APIProduct| p.status.as_ref().and_then(|s| s.discovered_auth_scheme.clone());
    stage
        .wait_for_product(c, "toys", "the tier and the prefix", |p| !p.plans().is_empty() && scheme(p).is_some())
        .await;
    stage.wait_for_product(c, "widgets", "the header", |p| scheme(p).is_some()).await;
    stage
        .wait_for_product(c, "ledger", "the token endpoint", |p| {
            p.status.as_ref().and_then(|s| s.oidc_discovery.as_ref()).is_some_and(|d| d.token_endpoint.is_some())
        })
        .await;
    let describe = |product: &'static str| {
        let reference = format!("{}/{product}", stage.shop);
        async move {
            let out = c.apiportal(Persona::Consumer, &["describe", "product", &reference]).await;
            assert!(out.success(), "{}", out.stderr);
            out.stdout
        }
    };
    let (toys, widgets, ledger) = (describe("toys").await, describe("widgets").await, describe("ledger").await);
    let pasted = [
        printed_commands(&toys, "Get a key:"),
        vec!["export API_KEY=key-of-the-consumer".to_owned()],
        printed_commands(&toys, "Call it:"),
        printed_commands(&widgets, "Call it:"),
        printed_commands(&ledger, "Get a token:"),
        printed_commands(&ledger, "Call it:"),
    ]
    .concat();

    let work = tempfile::tempdir().unwrap();
    let stubs = work.path().join("stubs");
    std::fs::create_dir(&stubs).unwrap();
    let record = work.path().join("curl-calls");
    for (name, body) in [
        ("curl", "printf '%s\\0' \"$@\" >> \"$RECORD\"; printf '\\n' >> \"$RECORD\""),
        ("jq", "cat > /dev/null; echo token-from-the-provider"),
    ] {
        let path = stubs.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    // As pasted into a terminal: each line runs whatever the one before did (a placeholder makes a command fail).
    let script = format!("set +e +o pipefail\ncd \"$WORK\"\nexport PATH=\"$STUBS:$PATH\"\n{}\n", pasted.join("\n"));
    let env = [
        ("WORK", work.path().to_str().unwrap()),
        ("STUBS", stubs.to_str().unwrap()),
        ("RECORD", record.to_str().unwrap()),
        ("CLIENT_ID", "the-client"),
        ("CLIENT_SECRET", "its-secret"),
    ];
    let out = c.shell(Persona::Consumer, &stage.team, &script, &env).await;

    let smuggled: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(smuggled.is_empty(), "pasting ran commands hidden in values {smuggled:?}:\n{script}\n{}", out.stderr);
    let calls: Vec<Vec<String>> = std::fs::read_to_string(&record)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\0').filter(|a| !a.is_empty()).map(str::to_owned).collect())
        .collect();
    let url = |route: &str| format!("https://{}/", stage.host(route));
    let expected: Vec<Vec<String>> = [
        vec!["-H".to_owned(), "Authorization: <prefix> key-of-the-consumer".to_owned(), url("toys")],
        vec!["-H".to_owned(), "<header-name>: key-of-the-consumer".to_owned(), url("widgets")],
        ["-s", "-u", "the-client:its-secret", "-d", "grant_type=client_credentials", "<token-endpoint>"]
            .map(str::to_owned)
            .to_vec(),
        vec!["-H".to_owned(), "Authorization: Bearer token-from-the-provider".to_owned(), url("ledger")],
    ]
    .to_vec();
    assert_eq!(calls, expected, "curl ran exactly as printed, with the variables expanded:\n{script}");
    for (describe, placeholder) in
        [(&toys, "<tier>"), (&toys, "<prefix>"), (&widgets, "<header-name>"), (&ledger, "<token-endpoint>")]
    {
        assert!(describe.contains(&format!("# {placeholder} stands for the")), "a note says why:\n{describe}");
    }
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    assert!(keys.list(&Default::default()).await.unwrap().items.is_empty(), "no request was made for '<tier>'");
}

#[tokio::test]
async fn owner_approves_and_rejects_and_consumers_cannot_approve_themselves() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    published_product(&stage, "toys", "manual").await;
    let product = format!("{}/toys", stage.shop);
    for plan in ["gold", "bronze"] {
        let out = c
            .apiportal(
                Persona::Consumer,
                &["-n", &stage.team, "request", &product, "--plan", plan, "--use-case", "toys"],
            )
            .await;
        assert!(out.success(), "{}", out.stderr);
    }
    let gold = format!("{}/toys-gold", stage.team);
    let bronze = format!("{}/toys-bronze", stage.team);
    // Owners read requests where the bridge projects them, in the product's namespace.
    for key in ["toys-gold", "toys-bronze"] {
        wait_projected(c, &stage.shop, &stage.team, key).await;
    }

    let out = c.apiportal(Persona::Consumer, &["approve", &gold]).await;
    assert_eq!(out.code, 1, "a consumer cannot approve their own request");
    assert!(out.stderr.contains("may not approve requests for apiproduct"), "{}", out.stderr);

    let out = c.apiportal(Persona::Owner, &["requests", "--pending"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("toys-gold") && out.stdout.contains("toys-bronze"), "{}", out.stdout);
    let out = c.apiportal(Persona::Owner2, &["requests", "--pending"]).await;
    assert!(
        !out.stdout.contains(&stage.team),
        "another owner does not see requests for bob's products: {}",
        out.stdout
    );

    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    assert_eq!(keys.get("toys-gold").await.unwrap().phase(), KeyPhase::Pending, "a manual request waits for an owner");

    let out = c.apiportal(Persona::Owner, &["approve", &gold, "--reason", "known partner"]).await;
    assert!(out.success(), "{}", out.stderr);
    let out = c.apiportal(Persona::Owner, &["approve", &gold]).await;
    assert!(out.success() && out.stdout.contains("unchanged"), "approving twice is a no-op: {out:?}");
    let out = c.apiportal(Persona::Owner, &["reject", &gold, "--reason", "changed my mind"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is already Approved by bob"), "{}", out.stderr);

    let out = c.apiportal(Persona::Owner, &["reject", &bronze, "--reason", "use gold"]).await;
    assert!(out.success(), "{}", out.stderr);
    let approved = eventually(20, "the key to be issued", || async {
        keys.get("toys-gold").await.ok().filter(|k| k.status.as_ref().is_some_and(|s| s.secret_ref.is_some()))
    })
    .await;
    assert_eq!(approved.status.unwrap().reviewed_by.as_deref(), Some("bob"));
    let rejected = keys.get("toys-bronze").await.unwrap();
    assert_eq!(rejected.phase(), KeyPhase::Rejected);
    assert_eq!(rejected.status.unwrap().reason.as_deref(), Some("use gold"));
    let out = c.apiportal(Persona::Consumer, &["-n", &stage.team, "key", "show", "toys-bronze", "--reveal"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty() && out.stderr.contains("is Rejected"), "{out:?}");
}

#[tokio::test]
async fn drafts_and_missing_routes_are_refused_with_the_next_step() {
    let c = cluster();
    let stage = Stage::new(c).await;
    let out = c
        .apiportal(Persona::Owner, &["-n", &stage.shop, "product", "create", "ghost", "--route", "no-such-route"])
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("httproute \"no-such-route\" not found") && out.stderr.contains("kubectl apiportal routes"),
        "{}",
        out.stderr
    );

    let out = stage.create_product(c, "draft", &[]).await;
    assert!(out.success(), "{}", out.stderr);
    let out = stage.create_product(c, "draft", &[]).await;
    assert!(out.success() && out.stdout.contains("unchanged"), "creating twice is a no-op: {out:?}");
    let out = c
        .apiportal(
            Persona::Consumer,
            &["-n", &stage.team, "request", &format!("{}/draft", stage.shop), "--plan", "gold"],
        )
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is a Draft") && out.stderr.contains("product publish draft"), "{}", out.stderr);

    let out = c
        .apiportal(
            Persona::Consumer,
            &["-n", &stage.team, "request", &format!("{}/nothing", stage.shop), "--plan", "gold"],
        )
        .await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("product \"nothing\" not found") && out.stderr.contains("kubectl apiportal products -A"),
        "{}",
        out.stderr
    );

    let out =
        c.apiportal(Persona::Consumer, &["-n", &stage.shop, "product", "create", "mine", "--route", "toys"]).await;
    assert_eq!(out.code, 1, "consumers cannot create products");
    assert!(
        out.stderr.contains("is forbidden: User \"alice\" cannot") && out.stderr.contains("ask your platform team"),
        "the API server's refusal, and who to ask: {}",
        out.stderr
    );
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    assert!(keys.list(&Default::default()).await.unwrap().items.is_empty(), "refused requests created nothing");
}

#[tokio::test]
async fn server_dry_run_changes_nothing_and_json_round_trips() {
    let c = cluster();
    let stage = Stage::new(c).await;
    let out = stage.create_product(c, "dry", &["--dry-run=server"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("(server dry run)"));
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Admin).await, &stage.shop);
    assert!(products.get_opt("dry").await.unwrap().is_none(), "--dry-run=server stored nothing");

    let out = stage.create_product(c, "real", &["--tag", "retail", "--version", "v2", "--publish"]).await;
    assert!(out.success(), "{}", out.stderr);
    let out =
        c.apiportal(Persona::Owner, &["-n", &stage.shop, "product", "unpublish", "real", "--dry-run=server"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(products.get("real").await.unwrap().is_published(), "dry-run unpublish changed nothing");

    let out = c.apiportal(Persona::Owner, &["-n", &stage.shop, "products", "-o", "json"]).await;
    assert!(out.success(), "{}", out.stderr);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("-o json is JSON");
    assert_eq!(list["kind"], "List");
    let listed: APIProduct = serde_json::from_value(list["items"][0].clone()).expect("items are APIProducts");
    assert_eq!(listed, products.get("real").await.unwrap(), "the JSON is the stored object");

    let out = c.apiportal(Persona::Owner, &["-n", &stage.shop, "describe", "product", "real", "-o", "yaml"]).await;
    let parsed: APIProduct = serde_saphyr::from_str(&out.stdout).expect("-o yaml is YAML");
    assert_eq!(parsed.spec.tags, ["retail"]);
    assert_eq!(parsed.spec.version.as_deref(), Some("v2"), "--version is the API's version");

    let out = c.apiportal(Persona::Owner, &["-n", &stage.shop, "products", "-o", "name"]).await;
    assert_eq!(out.stdout.trim(), "apiproduct.devportal.kuadrant.io/real");
}

#[tokio::test]
async fn install_twice_changes_nothing_and_dry_run_prints_the_manifests() {
    let c = cluster();
    c.ensure_installed();
    let out = c.apiportal(Persona::Admin, &["install", "--image", "apiportal-bridge:test"]).await;
    assert!(out.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    // Every object install applies, and the bridge's TLS Secret it creates.
    let expected = apiportal_core::install::objects(&Default::default()).len() + 1;
    assert_eq!(lines.len(), expected, "one line per object:\n{}", out.stdout);
    assert!(lines.iter().all(|l| l.ends_with(" unchanged")), "a second install changes nothing:\n{}", out.stdout);

    let out = c.apiportal(Persona::Admin, &["install", "--dry-run", "-o", "yaml"]).await;
    assert!(out.success());
    for kind in ["CustomResourceDefinition", "ClusterRole", "ValidatingAdmissionPolicy", "Deployment", "Service"] {
        assert!(out.stdout.contains(&format!("kind: {kind}")), "missing {kind}");
    }
}

#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("apiportal-unreachable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster: {{server: 'https://127.0.0.1:{port}', insecure-skip-tls-verify: true}}\nusers:\n- name: u\n  user: {{token: x}}\ncontexts:\n- name: gone\n  context: {{cluster: gone, user: u}}\n"
    )).unwrap();
    let mut cmd = std::process::Command::new(apiportal_tests::workspace_bin("kubectl-apiportal"));
    cmd.arg("--kubeconfig").arg(&kubeconfig).args(["products", "--request-timeout=5s"]);
    let out = apiportal_tests::run(cmd);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("unreachable") && out.stderr.contains("kubectl cluster-info"), "{}", out.stderr);
}

/// Owners decide with rights in their own product namespace alone: they read the requests for their products where
/// the bridge projects them (APIKeyRequests), never the APIKeys in consumers' namespaces, which name other teams'
/// consumers, emails and use cases. Consumers read their one key's Secret, not every Secret of their namespace.
#[tokio::test]
async fn owners_see_only_their_own_products_requests_and_read_no_apikey() {
    let c = cluster();
    shared_bridge().await;
    let bobs = Stage::new(c).await;
    published_product(&bobs, "toys", "manual").await;
    let erins = Stage::owned_by(c, Persona::Owner2).await;
    published_product(&erins, "toys", "manual").await;
    for stage in [&bobs, &erins] {
        let product = format!("{}/toys", stage.shop);
        let args = ["-n", &stage.team, "request", &product, "--plan", "gold", "--use-case", "private plans"];
        let out = c.apiportal(Persona::Consumer, &args).await;
        assert!(out.success(), "{}", out.stderr);
        wait_projected(c, &stage.shop, &stage.team, "toys-gold").await;
    }

    // The owner reads no APIKey: not by listing, not by name (even a request for their own product), not through
    // a status write that changes nothing (the API server answers a write with the object).
    let out = apiportal_tests::run({
        let mut cmd = c.kubectl(Persona::Owner);
        cmd.args(["get", "apikeys", "-A"]);
        cmd
    });
    assert!(!out.success() && out.stderr.contains("forbidden"), "kubectl get apikeys -A as an owner: {out:?}");
    let owner = c.client(Persona::Owner).await;
    let err = Api::<APIKey>::all(owner.clone()).list(&ListParams::default()).await.expect_err("an owner lists APIKeys");
    assert_eq!(api_error_code(&err), 403, "{err}");
    let err = Api::<APIKey>::namespaced(owner.clone(), &bobs.team).get("toys-gold").await.expect_err("get");
    assert_eq!(api_error_code(&err), 403, "{err}");
    let err = Api::<APIKey>::namespaced(owner, &erins.team)
        .patch_status("toys-gold", &PatchParams::default(), &Patch::Merge(json!({"status": {}})))
        .await
        .expect_err("a write that changes nothing answers with another product's APIKey");
    assert!(api_error_message(&err).contains("may not write the status of APIKey"), "{err}");

    // `requests -A` lists the requests for the owner's own products, and no other owner's.
    let out = c.apiportal(Persona::Owner, &["requests", "-A"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.lines().any(|l| l.starts_with(&bobs.team) && l.contains("toys-gold")), "{}", out.stdout);
    assert!(!out.stdout.contains(&erins.team) && !out.stdout.contains(&erins.shop), "{}", out.stdout);
    let out = c.apiportal(Persona::Owner2, &["requests"]).await;
    assert!(out.stdout.lines().any(|l| l.starts_with(&erins.team)), "{}", out.stdout);
    assert!(!out.stdout.contains(&bobs.team), "{}", out.stdout);
    let out = c.apiportal(Persona::Owner, &["requests", "-n", &erins.shop]).await;
    assert_eq!(out.code, 1, "another owner's namespace is closed: {out:?}");
    assert!(out.stderr.contains("forbidden"), "{}", out.stderr);
    let out = c.apiportal(Persona::Owner, &["requests", "-A", "-o", "json"]).await;
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("-o json is JSON");
    let items: Vec<APIKeyRequest> = serde_json::from_value(list["items"].clone()).expect("APIKeyRequests");
    let namespaces: Vec<&str> = items.iter().filter_map(|r| r.metadata.namespace.as_deref()).collect();
    assert!(
        namespaces.contains(&bobs.shop.as_str()) && !namespaces.contains(&erins.shop.as_str()),
        "the projections of bob's products' requests, and no other's: {}",
        out.stdout
    );

    // `describe key` shows the owner the request as projected; another owner's request is not found.
    let out = c.apiportal(Persona::Owner, &["describe", "key", &format!("{}/toys-gold", bobs.team)]).await;
    assert!(out.success() && out.stdout.contains("Use Case:       private plans"), "{out:?}");
    let out = c.apiportal(Persona::Owner, &["describe", "key", &format!("{}/toys-gold", erins.team)]).await;
    assert_eq!(out.code, 1, "{out:?}");
    // doctor agrees: the owner reads their requests and writes decisions.
    let out = c.apiportal(Persona::Owner, &["doctor", "-n", &bobs.shop]).await;
    assert!(
        out.stdout.contains("you may read the requests for the products of namespace")
            && out.stdout.contains("you may write decisions on keys in consumers' namespaces"),
        "{}",
        out.stdout
    );

    // The owner decides on their product's request without reading it, and cannot find another owner's.
    let out = c.apiportal(Persona::Owner, &["approve", &format!("{}/toys-gold", bobs.team), "--reason", "ok"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "apikey.devportal.kuadrant.io/toys-gold approved\n");
    let out = c.apiportal(Persona::Owner, &["approve", &format!("{}/toys-gold", erins.team)]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("among the requests for products you may approve"), "{}", out.stderr);
    let out = c.apiportal(Persona::Owner, &["revoke", &format!("{}/toys-gold", erins.team), "--reason", "mine"]).await;
    assert_eq!(out.code, 1, "{out:?}");

    // The consumer reads their key's Secret by name, and cannot list the Secrets of their namespace.
    wait_issued(c, &bobs.team, "toys-gold").await;
    let secrets: Api<Secret> = Api::namespaced(c.client(Persona::Consumer).await, &bobs.team);
    let err = secrets.list(&ListParams::default()).await.expect_err("a consumer lists the Secrets of their namespace");
    assert_eq!(api_error_code(&err), 403, "{err}");
    let out = c.apiportal(Persona::Consumer, &["-n", &bobs.team, "key", "show", "toys-gold", "--reveal"]).await;
    assert!(out.success(), "{}", out.stderr);
    let held = consumer_secret(c, &bobs.team, "toys-gold").await.expect("the consumer's copy");
    assert_eq!(out.stdout.trim_end(), value(&held));
}

/// `request --wait` that ends without a key says why, in the bridge's words: an automatic product whose AuthPolicy
/// is not enforced keeps requests Pending, and an approved key of a product that cannot take keys has no value.
#[tokio::test]
async fn request_wait_says_why_no_key_was_issued() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    let selector = json!({"matchLabels": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: stage.shop}});
    stage.auth_policy(c, "toys-keys", "toys", selector, false).await;
    published_product(&stage, "toys", "automatic").await;
    let product = format!("{}/toys", stage.shop);
    let out =
        c.apiportal(Persona::Consumer, &["-n", &stage.team, "request", &product, "--plan", "gold", "--wait=3s"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("is still Pending after 3s"), "{}", out.stderr);
    assert!(
        out.stderr.contains("KeysNotIssuable") && out.stderr.contains("is not both Accepted and Enforced"),
        "the reason the bridge gives: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("reviewers see it"),
        "an automatic product has no reviewer to wait for: {}",
        out.stderr
    );

    // A manual product on the same route: the AuthPolicy names the other product, so an approved key gets no value.
    stage.create_product(c, "toys-partner", &["--approval", "manual", "--publish"]).await;
    stage.wait_for_plans(c, "toys-partner").await;
    let partner = format!("{}/toys-partner", stage.shop);
    let out = c.apiportal(Persona::Consumer, &["-n", &stage.team, "request", &partner, "--plan", "gold"]).await;
    assert!(out.success(), "{}", out.stderr);
    wait_projected(c, &stage.shop, &stage.team, "toys-partner-gold").await;
    let out = c.apiportal(Persona::Owner, &["approve", &format!("{}/toys-partner-gold", stage.team)]).await;
    assert!(out.success(), "{}", out.stderr);
    wait_ready_reason(c, &stage.team, "toys-partner-gold", "KeysNotIssuable").await;
    let out =
        c.apiportal(Persona::Consumer, &["-n", &stage.team, "request", &partner, "--plan", "gold", "--wait=2s"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("is Approved, but no key is issued"), "{}", out.stderr);
    assert!(out.stderr.contains("KeysNotIssuable") && out.stderr.contains(&product), "{}", out.stderr);
}
