//! Command-line definition. Flags follow kubectl's conventions so the plugin feels like kubectl.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "kubectl-apiportal",
    bin_name = "kubectl apiportal",
    version,
    about = "Self-service API access on Kubernetes: browse API products, request keys, approve requests",
    long_about = None,
    // Not propagated: `product create --version` is the API's version, as owners expect to write it.
    after_help = "Examples:\n  kubectl apiportal products -A\n  kubectl apiportal request shop/toys --plan gold --use-case 'stock sync' --wait\n  kubectl apiportal key show toys-gold --reveal\n  kubectl apiportal key change-plan toys-gold --plan bronze --wait\n  kubectl apiportal requests --pending\n  kubectl apiportal approve team-alice/toys-gold\n  kubectl apiportal suspend team-alice/toys-gold --reason 'abuse report'"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file to use
    #[arg(long, global = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The name of the kubeconfig context to use
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace scope for this request
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// List across all namespaces
    #[arg(short = 'A', long, global = true)]
    pub all_namespaces: bool,
    /// Output format
    #[arg(short = 'o', long, global = true, value_enum)]
    pub output: Option<OutputFormat>,
    /// Don't print headers in table output
    #[arg(long, global = true)]
    pub no_headers: bool,
    /// Label selector to filter on, e.g. -l team=toys
    #[arg(short = 'l', long, global = true)]
    pub selector: Option<String>,
    /// Log verbosity: -v for info, -vv for debug, -vvv for trace (logs go to stderr)
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbosity: u8,
    /// Timeout for each request to the API server, e.g. 30s
    #[arg(long, global = true, value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Wide,
    Json,
    Yaml,
    Name,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DryRun {
    #[default]
    None,
    Client,
    Server,
}

#[derive(Args, Debug, Clone, Copy)]
pub struct DryRunArg {
    /// Only print what would change (client) or have the API server validate it without saving (server)
    #[arg(long, value_enum, default_value = "none", num_args = 0..=1, default_missing_value = "client", require_equals = true)]
    pub dry_run: DryRun,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List published API products
    #[command(after_help = "Examples:\n  kubectl apiportal products -A\n  kubectl apiportal products -n shop -o wide")]
    Products(ProductsArgs),
    /// Show a product's plans, limits, authentication and docs, or a key request's state and history
    #[command(
        after_help = "Examples:\n  kubectl apiportal describe product toys -n shop\n  kubectl apiportal describe product shop/toys\n  kubectl apiportal describe key toys-gold -n team-alice"
    )]
    Describe(DescribeArgs),
    /// Request an API key for a product's plan tier
    #[command(
        after_help = "Examples:\n  kubectl apiportal request shop/toys --plan gold --use-case 'nightly stock sync'\n  kubectl apiportal request toys --plan bronze --wait=2m -n team-alice\n  kubectl apiportal request shop/toys --plan gold --application mobile   # creates mobile-toys-gold"
    )]
    Request(RequestArgs),
    /// List your API key requests
    #[command(
        after_help = "Examples:\n  kubectl apiportal keys\n  kubectl apiportal keys -A -o wide\n  kubectl apiportal keys --application mobile"
    )]
    Keys(KeysArgs),
    /// Show one API key request, reveal its key, rotate it, or move it to another plan
    #[command(subcommand)]
    Key(KeyCommand),
    /// Revoke an API key: consumers delete their own request; approvers revoke a consumer's key with --reason
    #[command(
        long_about = "Revoke an API key.\n\nAs its consumer (no --reason): deletes your own request NAME and, with it, the key; with --application, every key of that application in the namespace.\nAs an approver (--reason): cuts off a consumer's approved or suspended key NAMESPACE/NAME at once; the request stays, Revoked, so its consumer sees who revoked it and why.",
        after_help = "Examples:\n  # A consumer drops their own key, or all the keys of one application:\n  kubectl apiportal revoke toys-gold -n team-alice\n  kubectl apiportal revoke --application mobile -n team-alice\n  # An owner cuts a consumer's key off:\n  kubectl apiportal revoke team-alice/toys-gold --reason 'key leaked'"
    )]
    Revoke(RevokeArgs),
    /// Create, publish and unpublish API products (owners)
    #[command(subcommand)]
    Product(ProductCommand),
    /// List requests for the products you may approve: new requests and plan changes (owners, admins)
    #[command(
        long_about = "List requests for the products you may approve: new requests and plan changes (owners, admins).\n\nRequests are read where the bridge projects them, in each product's namespace (APIKeyRequests): with -n, that product namespace; otherwise every namespace where you may read them (cluster-wide for admins). The PLAN column shows a plan change waiting for a decision as OLD→NEW.",
        after_help = "Examples:\n  kubectl apiportal requests --pending\n  kubectl apiportal requests --product shop/toys\n  kubectl apiportal requests -n shop -o wide"
    )]
    Requests(RequestsArgs),
    /// Approve pending API key requests, or the plan changes of approved keys (owners, admins)
    #[command(
        after_help = "Examples:\n  kubectl apiportal approve team-alice/toys-gold\n  kubectl apiportal approve team-alice/toys-gold team-bob/toys-gold --reason 'known partners'\n  kubectl apiportal approve --all-pending --product shop/toys --dry-run"
    )]
    Approve(DecideArgs),
    /// Reject pending API key requests, or the plan changes of approved keys (owners, admins)
    #[command(
        after_help = "Examples:\n  kubectl apiportal reject team-alice/toys-gold --reason 'use the bronze tier'\n  kubectl apiportal reject --all-pending --product shop/toys --reason 'closed for new consumers'"
    )]
    Reject(DecideArgs),
    /// Suspend an approved key: the gateway refuses it until it is resumed; its consumer keeps the value (owners, admins)
    #[command(after_help = "Examples:\n  kubectl apiportal suspend team-alice/toys-gold --reason 'unpaid invoice'")]
    Suspend(SuspendArgs),
    /// Resume a suspended key: the same value works again (owners, admins)
    #[command(after_help = "Examples:\n  kubectl apiportal resume team-alice/toys-gold --reason 'invoice paid'")]
    Resume(ResumeArgs),
    /// Install apiportal's CRDs, RBAC, admission policy and the bridge (platform)
    #[command(
        after_help = "Examples:\n  kubectl apiportal install\n  kubectl apiportal install --dry-run -o yaml > apiportal.yaml"
    )]
    Install(InstallArgs),
    /// Remove what install applied; keeps the CRDs and all products and keys unless --delete-crds
    #[command(
        after_help = "Examples:\n  kubectl apiportal uninstall\n  kubectl apiportal uninstall --delete-crds   # also deletes every APIProduct and APIKey"
    )]
    Uninstall(UninstallArgs),
    /// List HTTPRoutes the platform team marked as exposable (platform, owners)
    #[command(after_help = "Examples:\n  kubectl apiportal routes -A")]
    Routes(RoutesArgs),
    /// Mark an HTTPRoute as exposable, so owners can build products on it; with --product, protect it with an
    /// AuthPolicy that accepts only that product's keys (platform)
    #[command(
        after_help = "Examples:\n  kubectl apiportal expose toys -n shop\n  kubectl apiportal expose toys -n shop --product toys\n  kubectl apiportal expose toys -n shop --product toys --dry-run -o yaml   # print the AuthPolicy"
    )]
    Expose(ExposeArgs),
    /// Check the installation, each product's policies and your own rights; print how to fix each problem
    #[command(after_help = "Examples:\n  kubectl apiportal doctor -A")]
    Doctor,
    /// Print the plugin's and the API server's versions
    #[command(after_help = "Examples:\n  kubectl apiportal version")]
    Version,
    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  source <(kubectl-apiportal completion bash)\n  kubectl-apiportal completion zsh > \"${fpath[1]}/_kubectl-apiportal\""
    )]
    Completion(CompletionArgs),
}

#[derive(Args, Debug)]
pub struct ProductsArgs {
    /// Include Draft products (owners and admins)
    #[arg(long)]
    pub include_drafts: bool,
}

#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(subcommand)]
    pub what: DescribeTarget,
}

#[derive(Subcommand, Debug)]
pub enum DescribeTarget {
    /// Describe an API product: NAME or NAMESPACE/NAME
    Product { name: String },
    /// Describe an API key request, with its whole history: NAME or NAMESPACE/NAME
    Key { name: String },
}

#[derive(Args, Debug)]
pub struct KeysArgs {
    /// Only the keys of this application
    #[arg(long, value_parser = parse_application)]
    pub application: Option<String>,
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The product: NAME (in the request's namespace) or NAMESPACE/NAME
    pub product: String,
    /// The plan tier, one the product offers (see describe product)
    #[arg(long)]
    pub plan: String,
    /// Why you need access; shown to the reviewer
    #[arg(long)]
    pub use_case: Option<String>,
    /// Name of the APIKey to create (default PRODUCT-PLAN, or APPLICATION-PRODUCT-PLAN with --application)
    #[arg(long)]
    pub name: Option<String>,
    /// The application the key is for: list, rotate and revoke an application's keys together
    #[arg(long, value_parser = parse_application)]
    pub application: Option<String>,
    /// Contact email for the reviewer
    #[arg(long)]
    pub email: Option<String>,
    /// Ask for a key that stops working after this long (e.g. 30d); the bridge removes it then. Defaults to
    /// the product's maximum key lifetime, when it has one
    #[arg(long, value_parser = parse_duration)]
    pub expires_in: Option<Duration>,
    /// Wait until the request is decided, up to the given time (default 5m)
    #[arg(long, value_parser = parse_duration, num_args = 0..=1, default_missing_value = "5m", require_equals = true)]
    pub wait: Option<Duration>,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Show a request's state, limits and how to call the API; --reveal prints only the key
    #[command(
        after_help = "Examples:\n  kubectl apiportal key show toys-gold\n  export TOYS_KEY=$(kubectl apiportal key show toys-gold --reveal)"
    )]
    Show {
        name: String,
        /// Print the key itself, and nothing else, to stdout
        #[arg(long)]
        reveal: bool,
    },
    /// Replace a key's value; the old value keeps working for --grace (consumers, approvers)
    #[command(
        after_help = "Examples:\n  kubectl apiportal key rotate toys-gold --grace 24h\n  kubectl apiportal key rotate --application mobile   # every key of the application\n  kubectl apiportal key rotate team-alice/toys-gold --grace 0   # an approver, after a leak"
    )]
    Rotate(RotateArgs),
    /// Move an approved key to another plan tier of its product; the key keeps its value. A manual product's
    /// owner approves the move first
    #[command(
        name = "change-plan",
        after_help = "Examples:\n  kubectl apiportal key change-plan toys-gold --plan bronze\n  kubectl apiportal key change-plan toys-gold --plan gold --wait=10m"
    )]
    ChangePlan(ChangePlanArgs),
}

#[derive(Args, Debug)]
pub struct ChangePlanArgs {
    /// The key: NAME (in the namespace) or NAMESPACE/NAME
    pub name: String,
    /// The tier to move to, one the product offers (see describe product)
    #[arg(long)]
    pub plan: String,
    /// Wait until the move is applied or refused, up to the given time (default 5m)
    #[arg(long, value_parser = parse_duration, num_args = 0..=1, default_missing_value = "5m", require_equals = true)]
    pub wait: Option<Duration>,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The key: NAME (in the namespace) or NAMESPACE/NAME
    #[arg(required_unless_present = "application", conflicts_with = "application")]
    pub name: Option<String>,
    /// Rotate every key of this application in the namespace instead
    #[arg(long, value_parser = parse_application)]
    pub application: Option<String>,
    /// How long the old value keeps working at the gateway (0 stops it at once)
    #[arg(long, value_parser = parse_duration, default_value = "24h")]
    pub grace: Duration,
    /// Wait until the bridge has issued the new value, up to the given time (default 1m; --wait=0 returns at once)
    #[arg(long, value_parser = parse_duration, num_args = 0..=1, default_missing_value = "1m", default_value = "1m", require_equals = true)]
    pub wait: Duration,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// Your own request NAME; with --reason, a consumer's key NAMESPACE/NAME
    #[arg(required_unless_present = "application", conflicts_with = "application")]
    pub name: Option<String>,
    /// Revoke as an approver, saying why (the consumer reads it); the request stays, Revoked
    #[arg(long, conflicts_with = "application")]
    pub reason: Option<String>,
    /// Delete every one of your keys of this application in the namespace instead
    #[arg(long, value_parser = parse_application)]
    pub application: Option<String>,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Subcommand, Debug)]
pub enum ProductCommand {
    /// Create an API product over an HTTPRoute in the same namespace
    #[command(
        after_help = "Examples:\n  kubectl apiportal product create toys -n shop --route toys \\\n      --display-name 'Toys API' --approval automatic"
    )]
    Create(Box<ProductCreateArgs>),
    /// Make a product visible to consumers
    #[command(after_help = "Examples:\n  kubectl apiportal product publish toys -n shop")]
    Publish {
        name: String,
        #[command(flatten)]
        dry_run: DryRunArg,
    },
    /// Hide a product from consumers (existing keys keep working)
    #[command(after_help = "Examples:\n  kubectl apiportal product unpublish toys -n shop")]
    Unpublish {
        name: String,
        #[command(flatten)]
        dry_run: DryRunArg,
    },
}

#[derive(Args, Debug)]
pub struct ProductCreateArgs {
    pub name: String,
    /// The HTTPRoute that serves the API, in the product's namespace
    #[arg(long)]
    pub route: String,
    /// Name shown to consumers (default: NAME)
    #[arg(long)]
    pub display_name: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// The API's version, e.g. v1
    #[arg(long = "version", visible_alias = "api-version", value_name = "VERSION")]
    pub api_version: Option<String>,
    /// Who approves requests
    #[arg(long, value_enum, default_value = "manual")]
    pub approval: Approval,
    /// Publish at once instead of starting as a Draft
    #[arg(long)]
    pub publish: bool,
    #[arg(long)]
    pub openapi_url: Option<String>,
    #[arg(long)]
    pub docs_url: Option<String>,
    /// Owning team (also the Backstage owner unless the product has a backstage.io/owner annotation)
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// A tag; repeat for several
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// At most this many pending or approved keys per consumer
    #[arg(long)]
    pub max_keys_per_user: Option<i32>,
    /// The longest a key may live, e.g. 90d; every request must expire within it
    #[arg(long)]
    pub max_key_lifetime: Option<String>,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    Manual,
    Automatic,
}

#[derive(Args, Debug)]
pub struct RequestsArgs {
    /// Only requests still waiting for a decision
    #[arg(long)]
    pub pending: bool,
    /// Only requests for this product: NAME or NAMESPACE/NAME
    #[arg(long)]
    pub product: Option<String>,
}

#[derive(Args, Debug)]
pub struct DecideArgs {
    /// The requests: NAMESPACE/NAME each (requests live in the consumers' namespaces)
    #[arg(required_unless_present = "all_pending", conflicts_with = "all_pending")]
    pub keys: Vec<String>,
    /// Every pending request for --product
    #[arg(long, requires = "product")]
    pub all_pending: bool,
    /// With --all-pending: the product, NAME or NAMESPACE/NAME
    #[arg(long)]
    pub product: Option<String>,
    /// Why; recorded in the key's status and history, shown to the consumer (required to reject)
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Args, Debug)]
pub struct SuspendArgs {
    /// The key: NAMESPACE/NAME (it lives in its consumer's namespace)
    pub key: String,
    /// Why; recorded in the key's status and history, shown to the consumer
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The key: NAMESPACE/NAME
    pub key: String,
    /// Why; recorded in the key's status and history, shown to the consumer
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// The bridge's container image
    #[arg(long)]
    pub image: Option<String>,
    /// Namespace for the Secrets the AuthPolicy selects (consumers must not be able to write there)
    #[arg(long, default_value = apiportal_core::DEFAULT_ENFORCEMENT_NAMESPACE)]
    pub enforcement_namespace: String,
    /// Bridge replicas (one reconciles, all serve)
    #[arg(long, default_value_t = 2)]
    pub replicas: i32,
    /// A Secret (tls.crt, tls.key) in apiportal-system for the bridge's HTTPS view, e.g. one cert-manager keeps
    /// renewed; without it install creates a self-signed one (with ca.crt for the view's clients) once
    #[arg(long)]
    pub tls_secret: Option<String>,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Args, Debug)]
pub struct UninstallArgs {
    /// Also delete the CRDs, and with them every APIProduct and APIKey in the cluster (each key is revoked
    /// first: its Secrets are removed)
    #[arg(long)]
    pub delete_crds: bool,
    /// With --delete-crds, how long to wait for the bridge to remove the keys' Secrets before doing it itself
    #[arg(long, value_parser = parse_duration, default_value = "2m")]
    pub timeout: Duration,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Args, Debug)]
pub struct RoutesArgs {
    /// Also list routes not marked as exposable
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct ExposeArgs {
    /// The HTTPRoute's name
    pub route: String,
    /// Also protect the route with an AuthPolicy that accepts only this product's keys (`<product>-keys`)
    #[arg(long)]
    pub product: Option<String>,
    /// With --product: the prefix consumers send before the key in the Authorization header
    #[arg(long, default_value = "APIKEY", requires = "product")]
    pub key_prefix: String,
    #[command(flatten)]
    pub dry_run: DryRunArg,
}

#[derive(Args, Debug)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// An application's name, as `spec.application` takes it: a DNS label.
pub fn parse_application(text: &str) -> Result<String, String> {
    let label = !text.is_empty()
        && text.len() <= 63
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if label {
        Ok(text.to_owned())
    } else {
        Err("an application is named with at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. mobile-app".to_owned())
    }
}

/// Durations in the one grammar every apiportal flag uses (`90s`, `5m`, `1h30m`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    apiportal_core::duration::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_are_dns_labels() {
        for good in ["mobile", "web-2", "a"] {
            assert_eq!(parse_application(good).as_deref(), Ok(good));
        }
        for bad in ["", "Mobile", "mobile app", "-web", "web-", "a_b", &"a".repeat(64)] {
            assert!(parse_application(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
