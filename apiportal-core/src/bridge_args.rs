//! The bridge's flags, each also an environment variable: `APIPORTAL_` and the flag's name in capitals, `-` as
//! `_` (`--log-format` is `APIPORTAL_LOG_FORMAT`; a repeatable flag takes a comma-separated list), the flag
//! winning over the variable. Defined here, not in the bridge, so that `kubectl apiportal install` writes the
//! Deployment's arguments from the same definition (`to_args`) and the two cannot disagree: a test parses what
//! `to_args` renders back into the same value.

use std::{ffi::OsString, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum, parser::ValueSource};
use ipnet::IpNet;
use serde::{Serialize, Serializer};

fn duration_text<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::duration::format(*d))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

fn parse_cidr(text: &str) -> Result<IpNet, String> {
    text.parse().map_err(|_| format!("invalid CIDR range {text:?}: use e.g. 10.0.0.0/8 or 127.0.0.1/32"))
}

#[derive(Parser, Serialize, Debug, Clone, PartialEq)]
#[command(
    name = "apiportal-bridge",
    version,
    about = "Reconciles apiportal's APIProducts and APIKeys and serves a read-only JSON view of them"
)]
#[serde(rename_all = "kebab-case")]
pub struct Args {
    /// Kubeconfig to use outside a cluster (default: KUBECONFIG, ~/.kube/config, then in-cluster)
    #[arg(long, env = "APIPORTAL_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use
    #[arg(long, env = "APIPORTAL_CONTEXT")]
    pub context: Option<String>,
    /// Address of the HTTP view, probes and metrics
    #[arg(long, env = "APIPORTAL_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Optional second address serving only /metrics and the probes
    #[arg(long, env = "APIPORTAL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// The view's TLS certificate (PEM, with its chain); read again when the file changes
    #[arg(long, env = "APIPORTAL_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The view's TLS private key (PEM)
    #[arg(long, env = "APIPORTAL_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Serve the view over plain HTTP (callers' tokens then cross the network in clear): for local use only
    #[arg(long, env = "APIPORTAL_INSECURE_HTTP", conflicts_with = "tls_cert_file")]
    pub insecure_http: bool,
    /// An audience the view's callers' tokens may be issued for (TokenReview); repeatable. ServiceAccount tokens
    /// are audience-bound: mint Backstage's for this one. Users' OIDC tokens pass a TokenReview only for the
    /// API server's own audience: for the delegated pattern add it (e.g. https://kubernetes.default.svc)
    #[arg(
        long = "token-audience",
        env = "APIPORTAL_TOKEN_AUDIENCE",
        value_delimiter = ',',
        default_value = crate::DEFAULT_TOKEN_AUDIENCE
    )]
    #[serde(rename = "token-audience")]
    pub token_audiences: Vec<String>,
    /// Watch only this namespace (default: every namespace)
    #[arg(long, env = "APIPORTAL_NAMESPACE")]
    pub namespace: Option<String>,
    /// Namespace of the Secrets the AuthPolicy selects; consumers must not be able to write there
    #[arg(long, env = "APIPORTAL_ENFORCEMENT_NAMESPACE", default_value = crate::DEFAULT_ENFORCEMENT_NAMESPACE)]
    pub enforcement_namespace: String,
    /// Log format
    #[arg(long, env = "APIPORTAL_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Namespace of the leader-election Lease (and of the key lifetime ConfigMap)
    #[arg(long, env = "APIPORTAL_LEASE_NAMESPACE", default_value = crate::SYSTEM_NAMESPACE)]
    pub lease_namespace: String,
    /// Name of the leader-election Lease
    #[arg(long, env = "APIPORTAL_LEASE_NAME", default_value = crate::LEASE_NAME)]
    pub lease_name: String,
    /// The longest grace any product may give a rotated-out key value (a product's maxRotationGrace, default 7d,
    /// is held within it)
    #[arg(long, env = "APIPORTAL_MAX_ROTATION_GRACE", value_parser = parse_duration, default_value = "30d")]
    #[serde(serialize_with = "duration_text")]
    pub max_rotation_grace: Duration,
    /// Seconds a leader holds the Lease without renewing it
    #[arg(long, env = "APIPORTAL_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration: u64,
    /// This replica's identity in the Lease (install sets the Pod's name; default: the host name and process id).
    /// POD_NAME, its former variable, is still read when APIPORTAL_IDENTITY is not set
    #[arg(long, env = "APIPORTAL_IDENTITY")]
    pub identity: Option<String>,
    /// Largest OpenAPI document fetched into a product's status, in bytes. OPENAPI_SPEC_MAX_SIZE, its former
    /// variable, is still read when APIPORTAL_OPENAPI_MAX_BYTES is not set
    #[arg(long, env = "APIPORTAL_OPENAPI_MAX_BYTES", default_value_t = 500 * 1024)]
    pub openapi_max_bytes: usize,
    /// Timeout of each outgoing fetch (OpenAPI documents, OIDC discovery)
    #[arg(long, env = "APIPORTAL_FETCH_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    #[serde(serialize_with = "duration_text")]
    pub fetch_timeout: Duration,
    /// Allow fetching documents over plain http (https only by default)
    #[arg(long, env = "APIPORTAL_FETCH_ALLOW_HTTP")]
    pub fetch_allow_http: bool,
    /// A range fetches may reach although it is refused by default (loopback, link-local, private); repeatable
    #[arg(long = "fetch-allow-cidr", env = "APIPORTAL_FETCH_ALLOW_CIDR", value_name = "CIDR", value_delimiter = ',', value_parser = parse_cidr)]
    #[serde(rename = "fetch-allow-cidr")]
    pub fetch_allow_cidrs: Vec<IpNet>,
    /// A range fetches may not reach (e.g. the cluster's service and pod ranges when they are public); repeatable
    #[arg(long = "fetch-deny-cidr", env = "APIPORTAL_FETCH_DENY_CIDR", value_name = "CIDR", value_delimiter = ',', value_parser = parse_cidr)]
    #[serde(rename = "fetch-deny-cidr")]
    pub fetch_deny_cidrs: Vec<IpNet>,
    /// Reconciles each controller runs at once. Bounded so that thousands of objects arriving together (a
    /// restart, a bulk import) cannot open thousands of connections to the API server at once.
    #[arg(long, env = "APIPORTAL_MAX_CONCURRENT_RECONCILES", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// How long an authentication or authorisation decision of the view is cached
    #[arg(long, env = "APIPORTAL_AUTH_CACHE_TTL", value_parser = parse_duration, default_value = "10s")]
    #[serde(serialize_with = "duration_text")]
    pub auth_cache_ttl: Duration,
    /// TokenReviews and SubjectAccessReviews the view has in flight at most
    #[arg(long, env = "APIPORTAL_MAX_REVIEWS_IN_FLIGHT", default_value_t = 16)]
    pub max_reviews_in_flight: usize,
    /// SubjectAccessReviews one caller (one user, e.g. a ServiceAccount with many namespaces to check) has in
    /// flight at most, so that one caller cannot take every review slot from the others
    #[arg(long, env = "APIPORTAL_MAX_REVIEWS_PER_CALLER", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_reviews_per_caller: u16,
    /// Unknown tokens one client may present per minute (each costs a TokenReview); 429 beyond
    #[arg(long, env = "APIPORTAL_UNKNOWN_TOKENS_PER_MINUTE", default_value_t = 60)]
    pub unknown_tokens_per_minute: u32,
    /// Open connections the view accepts at most
    #[arg(long, env = "APIPORTAL_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Requests the view serves at once at most (others wait)
    #[arg(long, env = "APIPORTAL_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// How long a request to the view may take
    #[arg(long, env = "APIPORTAL_REQUEST_TIMEOUT", value_parser = parse_duration, default_value = "30s")]
    #[serde(serialize_with = "duration_text")]
    pub request_timeout: Duration,
    /// How long before its expiresAt a key is flagged ExpiringSoon (condition, Event, webhook, metric)
    #[arg(long, env = "APIPORTAL_EXPIRY_WARNING", value_parser = parse_duration, default_value = "7d")]
    #[serde(serialize_with = "duration_text")]
    pub expiry_warning: Duration,
    /// Secret NAMESPACE/NAME with the webhook's `url` and `signingKey`: every key's requests, decisions,
    /// rotations and expiry warnings are posted there as signed CloudEvents
    #[arg(long, env = "APIPORTAL_WEBHOOK_SECRET", value_name = "NAMESPACE/NAME")]
    pub webhook_secret: Option<String>,
}

#[derive(ValueEnum, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Human,
    Json,
}

/// Variables the bridge read before every flag's was named `APIPORTAL_*`, still honoured when neither the flag
/// nor its variable is set: (the argument, its flag, the former variable).
const FORMER_VARIABLES: &[(&str, &str, &str)] =
    &[("identity", "identity", "POD_NAME"), ("openapi_max_bytes", "openapi-max-bytes", "OPENAPI_SPEC_MAX_SIZE")];

impl Args {
    /// The bridge's settings: its command line, then its environment; exits with clap's message on a usage error.
    pub fn from_command_line() -> Self {
        Self::try_from_command_line(std::env::args_os(), |name| std::env::var_os(name)).unwrap_or_else(|e| e.exit())
    }

    /// The settings `argv` and the environment give (the `APIPORTAL_*` variables, then the former names of
    /// `FORMER_VARIABLES`, looked up with `former`).
    pub fn try_from_command_line(
        argv: impl IntoIterator<Item = impl Into<OsString>>,
        former: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, clap::Error> {
        let mut argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let matches = Self::command().try_get_matches_from(&argv)?;
        let mut from_former = false;
        for (id, flag, variable) in FORMER_VARIABLES {
            let unset = matches!(matches.value_source(id), None | Some(ValueSource::DefaultValue));
            if let Some(value) = former(variable).filter(|_| unset) {
                let mut arg = OsString::from(format!("--{flag}="));
                arg.push(value);
                argv.push(arg);
                from_former = true;
            }
        }
        match from_former {
            true => Self::from_arg_matches(&Self::command().try_get_matches_from(&argv)?),
            false => Self::from_arg_matches(&matches),
        }
    }

    /// The defaults, as the bridge sees them with no flags and no environment, whatever the environment of the
    /// process asking (`install` renders a Deployment from them: the caller's `APIPORTAL_LOG_FORMAT` must not
    /// change it).
    pub fn defaults() -> Self {
        let command = Self::command().mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command.try_get_matches_from(["apiportal-bridge"]).expect("the defaults parse");
        Self::from_arg_matches(&matches).expect("the defaults parse")
    }

    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "bridge".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// The command-line flags that make the bridge run with these settings: only those that differ from the
    /// defaults, as `--name=value` (repeated for lists, bare for booleans).
    pub fn to_args(&self) -> Vec<String> {
        let (this, defaults) = (
            serde_json::to_value(self).expect("flags serialise"),
            serde_json::to_value(Self::defaults()).expect("flags serialise"),
        );
        let mut out = Vec::new();
        for (name, value) in this.as_object().expect("an object") {
            if defaults.get(name) == Some(value) {
                continue;
            }
            match value {
                serde_json::Value::Null => {}
                serde_json::Value::Bool(true) => out.push(format!("--{name}")),
                serde_json::Value::Bool(false) => {}
                serde_json::Value::Array(items) => out.extend(items.iter().map(|i| format!("--{name}={}", text(i)))),
                other => out.push(format!("--{name}={}", text(other))),
            }
        }
        out
    }
}

fn text(value: &serde_json::Value) -> String {
    value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag install may set survives a round trip through the command line, so the Deployment install
    /// writes always means what install meant.
    #[test]
    fn rendered_flags_parse_back_to_the_same_settings() {
        let mut args = Args::defaults();
        args.listen = "0.0.0.0:9443".parse().unwrap();
        args.metrics_listen = Some("0.0.0.0:9090".parse().unwrap());
        args.tls_cert_file = Some("/etc/apiportal/tls/tls.crt".into());
        args.tls_key_file = Some("/etc/apiportal/tls/tls.key".into());
        args.enforcement_namespace = "gateway-keys".into();
        args.log_format = LogFormat::Json;
        args.fetch_timeout = Duration::from_secs(90);
        args.fetch_allow_cidrs = vec!["10.1.0.0/16".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        args.fetch_deny_cidrs = vec!["fd00:10::/108".parse().unwrap()];
        args.max_reviews_per_caller = 2;
        args.expiry_warning = Duration::from_secs(3 * 86_400);
        args.webhook_secret = Some("apiportal-system/hooks".into());
        args.fetch_allow_http = true;
        let rendered = args.to_args();
        let parsed =
            Args::try_parse_from(std::iter::once("apiportal-bridge".to_owned()).chain(rendered.clone())).unwrap();
        assert_eq!(parsed, args, "{rendered:?}");
        assert!(rendered.contains(&"--fetch-timeout=1m30s".to_owned()), "{rendered:?}");
        assert!(rendered.contains(&"--fetch-allow-http".to_owned()), "{rendered:?}");
        assert!(!rendered.iter().any(|a| a.starts_with("--lease-name")), "defaults are not repeated: {rendered:?}");
    }

    /// A range the guard could not use is a usage error naming the flag, not a bridge that fails at start.
    #[test]
    fn a_bad_cidr_flag_is_a_usage_error() {
        for bad in ["10.0.0.0/40", "::/129", "10.0.0.0", "localhost/8", "10.0.0.0/-1"] {
            for flag in ["--fetch-allow-cidr", "--fetch-deny-cidr"] {
                let error = Args::try_parse_from(["apiportal-bridge", &format!("{flag}={bad}")])
                    .expect_err(&format!("{flag}={bad} is refused"));
                assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation, "{flag}={bad}");
                let text = error.to_string();
                assert!(text.contains(flag) && text.contains("use e.g. 10.0.0.0/8"), "{text}");
            }
        }
        let ok = Args::try_parse_from(["apiportal-bridge", "--fetch-allow-cidr=10.1.0.0/16"]).unwrap();
        assert_eq!(ok.fetch_allow_cidrs, ["10.1.0.0/16".parse::<IpNet>().unwrap()]);
    }

    #[test]
    fn the_defaults_render_to_nothing() {
        assert!(Args::defaults().to_args().is_empty());
    }

    /// The flags, as `apiportal-bridge --help` lists them: (flag, its environment variable).
    fn flags() -> Vec<(String, Option<String>)> {
        Args::command()
            .get_arguments()
            .filter_map(|a| Some((a.get_long()?.to_owned(), a.get_env().map(|e| e.to_string_lossy().into_owned()))))
            .filter(|(long, _)| long != "help" && long != "version")
            .collect()
    }

    #[test]
    fn every_flag_is_also_an_environment_variable_of_the_same_name() {
        let flags = flags();
        assert!(flags.len() > 25, "{flags:?}");
        for (flag, env) in flags {
            let expected = format!("APIPORTAL_{}", flag.to_uppercase().replace('-', "_"));
            assert_eq!(env, Some(expected), "--{flag}");
        }
    }

    /// The README's list of the bridge's flags is the list `--help` prints: none missing, none that is not one.
    #[test]
    fn the_readme_lists_every_flag() {
        let readme = include_str!("../../README.md");
        let start = readme.find("Flags (").expect("the README lists the bridge's flags");
        let paragraph = &readme[start..start + readme[start..].find("\n\n").unwrap()];
        let listed: std::collections::BTreeSet<String> = paragraph
            .split("`--")
            .skip(1)
            .map(|rest| rest.split(|c: char| !(c.is_ascii_lowercase() || c == '-')).next().unwrap().to_owned())
            .collect();
        let flags: std::collections::BTreeSet<String> = flags().into_iter().map(|(flag, _)| flag).collect();
        assert_eq!(listed, flags, "README.md's paragraph \"Flags (...)\" and `apiportal-bridge --help`");
    }

    #[test]
    fn a_list_flag_takes_a_comma_separated_list_from_its_variable_as_from_the_command_line() {
        let parsed = Args::try_parse_from(["apiportal-bridge", "--fetch-allow-cidr=10.1.0.0/16,127.0.0.1/32"]).unwrap();
        let expected: Vec<IpNet> = vec!["10.1.0.0/16".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        assert_eq!(parsed.fetch_allow_cidrs, expected);
    }

    #[test]
    fn the_former_variables_are_read_when_neither_the_flag_nor_its_variable_is_set() {
        let former = |name: &str| match name {
            "POD_NAME" => Some(OsString::from("bridge-7d9f-abcde")),
            "OPENAPI_SPEC_MAX_SIZE" => Some(OsString::from("1024")),
            _ => None,
        };
        let args = Args::try_from_command_line(["apiportal-bridge"], former).unwrap();
        assert_eq!((args.identity.as_deref(), args.openapi_max_bytes), (Some("bridge-7d9f-abcde"), 1024));
        let args =
            Args::try_from_command_line(["apiportal-bridge", "--identity=mine", "--openapi-max-bytes=2048"], former)
                .unwrap();
        assert_eq!((args.identity.as_deref(), args.openapi_max_bytes), (Some("mine"), 2048), "the flag wins");
        let error =
            Args::try_from_command_line(["apiportal-bridge"], |n| (n == "OPENAPI_SPEC_MAX_SIZE").then(|| "big".into()))
                .expect_err("a bad value is a usage error, as under the new name");
        assert!(error.to_string().contains("--openapi-max-bytes"), "{error}");
    }
}
