//! The committed YAML under deploy/ is exactly what the Rust types generate.

#[test]
fn committed_manifests_match_the_types() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    for (file, generated) in apiportal_core::crds::generated_files() {
        let committed = std::fs::read_to_string(deploy.join(file)).unwrap_or_default();
        assert!(
            committed == generated,
            "deploy/{file} differs from what the types generate: run `cargo run -p apiportal-core --bin crdgen` and commit"
        );
    }
}
