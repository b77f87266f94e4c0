//! Writes `bridge/api/view.schema.json`, the JSON Schema of the view's responses generated from its Rust types
//! (or, with `--check`, fails when the committed file differs).

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("api/view.schema.json");
    let text = apiportal_bridge::view::model::schema_text();
    if std::env::args().any(|a| a == "--check") {
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            return ExitCode::SUCCESS;
        }
        eprintln!("{} is stale: run `cargo run -p apiportal-bridge --bin apiportal-view-schema`", path.display());
        return ExitCode::FAILURE;
    }
    match std::fs::write(&path, text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
