//! The Backstage module inside a real Backstage backend (started by the module's own node test) reading the
//! real bridge on the real API server: a product the owner publishes with the plugin appears in Backstage's
//! catalog, and disappears when unpublished.

use std::process::Command;

use apiportal_tests::{cluster, repo_root, run, shared_bridge, stage::Stage, workspace_bin};

#[tokio::test]
async fn published_products_appear_in_a_real_backstage_catalog_and_leave_when_unpublished() {
    let module = repo_root().join("backstage-module");
    assert!(
        module.join("node_modules").exists(),
        "backstage-module/node_modules is missing: run backstage-module/test.sh first (scripts/test does)"
    );
    let c = cluster();
    let bridge = shared_bridge();
    let stage = Stage::new(c).await;
    let products = stage.published_product(c, "toys", "manual").await;

    let unpublish = format!(
        "{} --kubeconfig {} --context owner -n {} product unpublish toys",
        workspace_bin("kubectl-apiportal").display(),
        c.kubeconfig.display(),
        stage.shop
    );
    let mut node = Command::new("npm");
    node.current_dir(&module)
        .args(["run", "--silent", "test:e2e"])
        .env("APIPORTAL_BRIDGE_URL", &bridge.url)
        .env("APIPORTAL_BRIDGE_TOKEN", c.backstage_token().await)
        .env("APIPORTAL_BRIDGE_CA_FILE", c.ca_file())
        .env("APIPORTAL_E2E_REMOVE_PRODUCT", format!("{}/toys", stage.shop))
        .env("APIPORTAL_E2E_REMOVE_CMD", unpublish);
    let out = run(node);
    assert!(out.success(), "the Backstage end-to-end test failed:\n{}\n{}", out.stdout, out.stderr);
    // Jest prints its summary on stderr: "Tests:       2 passed, 2 total" when both real-bridge tests ran and
    // passed; a skipped or failed one would add "1 skipped, " or "1 failed, ". Spacing and colour codes aside.
    let summary: String = format!("{}\n{}", out.stdout, out.stderr)
        .split('\u{1b}')
        .enumerate()
        .map(|(i, part)| if i == 0 { part } else { part.split_once('m').map_or(part, |(_, rest)| rest) })
        .collect();
    assert!(
        summary.lines().any(|line| line.split_whitespace().eq(["Tests:", "2", "passed,", "2", "total"])),
        "both real-bridge tests ran and passed, none skipped:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(!products.get("toys").await.unwrap().is_published(), "the removal really went through the plugin");
}
