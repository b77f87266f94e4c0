//! The platform engineer's side of the plugin on a cluster where apiportal is not installed yet: clear errors
//! before install, install itself, doctor, routes, expose, completion.

use apiportal_tests::{Persona, bare_cluster, stage::Stage};

#[tokio::test]
async fn before_install_errors_say_to_install_then_install_doctor_routes_and_expose_work() {
    let c = bare_cluster();
    let out = c.apiportal(Persona::Consumer, &["products", "-A"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("apiportal's CRDs are not installed: run kubectl apiportal install"), "{}", out.stderr);

    let out = c.apiportal(Persona::Admin, &["doctor"]).await;
    assert_eq!(out.code, 1, "doctor fails while something is missing");
    assert!(
        out.stdout.contains("[problem] CRD for apiproducts") && out.stdout.contains("fix: kubectl apiportal install"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("[ok]      CRD for httproutes"), "{}", out.stdout);

    let out = c.apiportal(Persona::Consumer, &["install"]).await;
    assert_eq!(out.code, 1, "a consumer cannot install");
    assert!(
        out.stderr.contains("is forbidden: User \"alice\" cannot") && out.stderr.contains("ask your platform team"),
        "the API server's refusal, and who to ask: {}",
        out.stderr
    );

    let out = c.apiportal(Persona::Admin, &["install", "--dry-run=server"]).await;
    assert!(out.success(), "{}", out.stderr);
    let out = c.apiportal(Persona::Consumer, &["products", "-A"]).await;
    assert_eq!(out.code, 1, "a server dry run installed nothing");

    c.ensure_installed();
    let out = c.apiportal(Persona::Consumer, &["products", "-A"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stderr.contains("No resources found"), "{}", out.stderr);

    let stage = Stage::new(c).await;
    let out = c.apiportal(Persona::Admin, &["doctor", "-n", &stage.shop]).await;
    assert!(out.stdout.contains("[ok]      CRD for apiproducts"), "{}", out.stdout);
    assert!(
        out.stdout.contains("the bridge is not running"),
        "no bridge runs here, and doctor says so: {}",
        out.stdout
    );

    let out = c.apiportal(Persona::Owner, &["routes", "-n", &stage.shop]).await;
    assert!(out.success(), "{}", out.stderr);
    assert!(out.stdout.contains("toys") && out.stdout.contains(".example.com"), "{}", out.stdout);

    let out = c.apiportal(Persona::Admin, &["-n", &stage.shop, "product", "create", "x", "--route", "toys"]).await;
    assert!(out.success(), "{}", out.stderr);
    let out = c.apiportal(Persona::Admin, &["-n", &stage.shop, "routes", "--all", "-o", "wide"]).await;
    assert!(
        out.stdout.lines().any(|l| l.contains("toys") && l.contains(" x ")),
        "the route lists the product over it: {}",
        out.stdout
    );

    let out = c.apiportal(Persona::Admin, &["expose", "toys", "-n", &stage.shop]).await;
    assert!(out.success() && out.stdout.contains("unchanged"), "already exposed: {out:?}");
    let out = c.apiportal(Persona::Admin, &["expose", "nope", "-n", &stage.shop]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("httproute \"nope\" not found"), "{}", out.stderr);

    // With --product, expose also writes the AuthPolicy that accepts only that product's keys.
    let out = c
        .apiportal(Persona::Admin, &["expose", "toys", "-n", &stage.shop, "--product", "x", "--dry-run", "-o", "yaml"])
        .await;
    assert!(out.success(), "{}", out.stderr);
    let printed: serde_json::Value = serde_saphyr::from_str(&out.stdout).expect("YAML");
    assert_eq!(printed, apiportal_core::issuance::product_auth_policy(&stage.shop, "toys", "x", "APIKEY"));
    let out = c.apiportal(Persona::Admin, &["expose", "toys", "-n", &stage.shop, "--product", "x"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "httproute.gateway.networking.k8s.io/toys unchanged\nauthpolicy.kuadrant.io/x-keys created\n"
    );
    let policies: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        c.client(Persona::Admin).await,
        &stage.shop,
        &apiportal_tests::stage::authpolicy_resource(),
    );
    let policy = policies.get("x-keys").await.expect("the AuthPolicy exists");
    assert_eq!(
        policy.data["spec"]["rules"]["authentication"]["api-key"]["apiKey"]["selector"]["matchLabels"],
        serde_json::json!({"devportal.kuadrant.io/apiproduct": "x", "devportal.kuadrant.io/apiproduct-namespace": stage.shop})
    );
    let out = c.apiportal(Persona::Admin, &["expose", "toys", "-n", &stage.shop, "--product", "x"]).await;
    assert!(out.success() && out.stdout.ends_with("authpolicy.kuadrant.io/x-keys configured\n"), "{out:?}");
}

#[test]
fn usage_errors_exit_1_like_kubectl_and_help_exits_0() {
    let plugin = |args: &[&str]| {
        apiportal_tests::run({
            let mut cmd = std::process::Command::new(apiportal_tests::workspace_bin("kubectl-apiportal"));
            cmd.args(args);
            cmd
        })
    };
    let out = plugin(&["revoke"]);
    assert_eq!(out.code, 1, "a missing argument is an error, exit 1: {out:?}");
    assert!(out.stderr.contains("the following required arguments were not provided"), "{}", out.stderr);
    let out = plugin(&["products", "--colour"]);
    assert_eq!((out.code, out.stderr.contains("unexpected argument '--colour'")), (1, true), "{out:?}");
    let out = plugin(&["approve", "--help"]);
    assert_eq!(out.code, 0, "help is not an error: {out:?}");
    assert!(out.stdout.contains("Usage: kubectl apiportal approve"), "{}", out.stdout);
}

#[test]
fn completion_and_version_need_no_cluster() {
    let out = apiportal_tests::run({
        let mut cmd = std::process::Command::new(apiportal_tests::workspace_bin("kubectl-apiportal"));
        cmd.args(["completion", "bash"]);
        cmd
    });
    assert!(out.success() && out.stdout.contains("kubectl-apiportal"), "{}", out.stderr);
    let out = apiportal_tests::run({
        let mut cmd = std::process::Command::new(apiportal_tests::workspace_bin("kubectl-apiportal"));
        cmd.args(["version", "--kubeconfig", "/nonexistent"]);
        cmd
    });
    assert!(out.success());
    assert_eq!(
        out.stdout,
        format!("Client Version: v{}\n", env!("CARGO_PKG_VERSION")),
        "the plugin's own version, with no server"
    );
}
