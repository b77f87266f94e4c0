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
    #[arg(long, env = "APIPORTAL_FETCH_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub fetch_timeout: Duration,
    /// Reconciles each controller runs at once. Bounded so that thousands of objects arriving together (a
    /// restart, a bulk import) cannot open thousands of connections to the API server at once.
    #[arg(long, env = "APIPORTAL_MAX_CONCURRENT_RECONCILES", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// How long an authentication or authorisation decision of the view is cached
    #[arg(long, env = "APIPORTAL_AUTH_CACHE_TTL", value_parser = parse_duration, default_value = "10s")]
    pub auth_cache_ttl: Duration,
    /// How long before its expiresAt a key is flagged ExpiringSoon (condition, Event, webhook, metric)
    #[arg(long, env = "APIPORTAL_EXPIRY_WARNING", value_parser = parse_duration, default_value = "7d")]
    pub expiry_warning: Duration,
    /// Secret NAMESPACE/NAME with the webhook's `url` and `signingKey`: every key's requests, decisions,
    /// rotations and expiry warnings are posted there as signed CloudEvents
    #[arg(long, env = "APIPORTAL_WEBHOOK_SECRET", value_name = "NAMESPACE/NAME")]
    pub webhook_secret: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    apiportal_core::duration::parse(text)
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
