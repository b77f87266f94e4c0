//! Flags, each also settable from the environment.

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "apiportal-bridge",
    version,
    about = "Reconciles apiportal's APIProducts and APIKeys and serves a read-only JSON view of them"
)]
pub struct Args {
    /// Kubeconfig to use outside a cluster (default: KUBECONFIG, ~/.kube/config, then in-cluster)
    #[arg(long, env = "APIPORTAL_KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context to use
    #[arg(long, env = "APIPORTAL_CONTEXT")]
    pub context: Option<String>,
    /// Address of the HTTP view, probes and metrics
    #[arg(long, env = "APIPORTAL_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Optional second address serving only /metrics and the probes
    #[arg(long, env = "APIPORTAL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Watch only this namespace (default: every namespace)
    #[arg(long, env = "APIPORTAL_NAMESPACE")]
    pub namespace: Option<String>,
    /// Namespace of the Secrets the AuthPolicy selects; consumers must not be able to write there
    #[arg(long, env = "APIPORTAL_ENFORCEMENT_NAMESPACE", default_value = "kuadrant-system")]
    pub enforcement_namespace: String,
    /// Log format
    #[arg(long, env = "APIPORTAL_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Namespace of the leader-election Lease
    #[arg(long, env = "APIPORTAL_LEASE_NAMESPACE", default_value = apiportal_core::SYSTEM_NAMESPACE)]
    pub lease_namespace: String,
    /// Name of the leader-election Lease
    #[arg(long, env = "APIPORTAL_LEASE_NAME", default_value = "apiportal-bridge-leader")]
    pub lease_name: String,
    /// Seconds a leader holds the Lease without renewing it
    #[arg(long, env = "APIPORTAL_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration: u64,
    /// This replica's identity in the Lease (default: POD_NAME, else host name and process id)
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Largest OpenAPI document fetched into a product's status, in bytes
    #[arg(long, env = "OPENAPI_SPEC_MAX_SIZE", default_value_t = 500 * 1024)]
    pub openapi_max_bytes: usize,
    /// Timeout of each outgoing fetch (OpenAPI documents, OIDC discovery)
    #[arg(long, env = "APIPORTAL_FETCH_TIMEOUT", value_parser = parse_seconds, default_value = "10")]
    pub fetch_timeout: Duration,
    /// Reconciles each controller runs at once. Bounded so that thousands of objects arriving together (a
    /// restart, a bulk import) cannot open thousands of connections to the API server at once.
    #[arg(long, env = "APIPORTAL_MAX_CONCURRENT_RECONCILES", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// How long an authentication or authorisation decision of the view is cached, in seconds
    #[arg(long, env = "APIPORTAL_AUTH_CACHE_TTL", value_parser = parse_seconds, default_value = "10")]
    pub auth_cache_ttl: Duration,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim_end_matches('s')
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("invalid number of seconds {text:?}"))
}

impl Args {
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "bridge".into());
            format!("{host}-{}", std::process::id())
        })
    }
}
