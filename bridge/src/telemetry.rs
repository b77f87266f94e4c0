//! Logs via tracing: human-readable by default, JSON with `--log-format json`; `RUST_LOG` filters. Colour only
//! when stdout is a terminal: in a file or a log collector, escape codes are noise, and harm whoever reads the
//! file on a terminal later.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use apiportal_core::bridge_args::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube_lease_manager=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry.with(fmt::layer().json().flatten_event(true)).init(),
        LogFormat::Human => registry.with(fmt::layer().compact().with_ansi(std::io::stdout().is_terminal())).init(),
    }
}
