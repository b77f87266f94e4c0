//! Writes the manifests generated from the types into a folder (default `deploy/`), or checks them with
//! `--check`.

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let args = std::env::args().skip(1);
    let mut check = false;
    let mut dir = PathBuf::from("deploy");
    for arg in args {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!(
                    "usage: crdgen [--check] [DIR]\nWrites (or with --check, compares) the CRD, RBAC and admission YAML generated from the types; DIR defaults to deploy/."
                );
                return ExitCode::SUCCESS;
            }
            other => dir = PathBuf::from(other),
        }
    }
    let mut stale = Vec::new();
    for (file, content) in apiportal_core::crds::generated_files() {
        let path = dir.join(file);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
                stale.push(path);
            }
        } else if let Err(e) =
            std::fs::create_dir_all(path.parent().unwrap()).and_then(|_| std::fs::write(&path, content))
        {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if stale.is_empty() {
        return ExitCode::SUCCESS;
    }
    for path in stale {
        eprintln!("{} differs from what the types generate", path.display());
    }
    eprintln!("run `cargo run -p apiportal-core --bin crdgen` and commit the result");
    ExitCode::FAILURE
}
