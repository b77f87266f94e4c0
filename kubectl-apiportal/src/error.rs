//! Errors as the user reads them: what failed, on which object, why, and what to run next. Messages carry names
//! and the API server's words, which may carry anything: Display shows them through `terminal::visible`, the
//! one way an error reaches a terminal.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// Bad flags or arguments.
    Usage(String),
    /// No usable kubeconfig.
    Config(String),
    /// The API server cannot be reached.
    Unreachable(String),
    /// apiportal's CRDs are not installed.
    NotInstalled(String),
    /// The caller lacks the rights.
    Forbidden(String),
    NotFound(String),
    /// The request conflicts with the object's current state.
    Conflict(String),
    /// The API server rejected the object.
    Invalid(String),
    /// Some of several operations failed (each was reported as it happened).
    Partial(String),
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m)
            | Self::Config(m)
            | Self::Unreachable(m)
            | Self::NotInstalled(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::Invalid(m)
            | Self::Partial(m)
            | Self::Other(m) => f.write_str(&crate::terminal::visible(m)),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The one way a missing installation is reported, whichever command met it.
    pub fn not_installed() -> Self {
        Self::NotInstalled(
            "apiportal's CRDs are not installed: run kubectl apiportal install as a cluster admin".to_owned(),
        )
    }

    /// Whether the API server refused or did not find something: on a cluster without apiportal's CRDs, users
    /// are refused by RBAC (the roles do not exist yet) before they could learn the resource type is missing.
    pub fn may_mean_not_installed(&self) -> bool {
        matches!(self, Self::Forbidden(_) | Self::NotFound(_) | Self::NotInstalled(_))
    }

    /// Turns a kube error into a message that says what was being done (`doing`, e.g. "get apiproduct shop/toys")
    /// and what to do about it.
    pub fn from_kube(err: kube::Error, server: &str, doing: &str) -> Self {
        match err {
            kube::Error::Api(status) => {
                let message = status.message.clone();
                match status.code {
                    401 => Self::Forbidden(format!(
                        "cannot {doing}: the API server does not accept your credentials ({message}); log in again or check --context"
                    )),
                    403 => Self::Forbidden(format!(
                        "cannot {doing}: {message}; ask your platform team for the apiportal role you need (see kubectl apiportal doctor)"
                    )),
                    404 if status.details.as_ref().is_none_or(|d| d.name.is_empty()) => Self::not_installed(),
                    404 => Self::NotFound(format!("cannot {doing}: {message}")),
                    409 => Self::Conflict(format!("cannot {doing}: {message}")),
                    422 | 400 => Self::Invalid(format!("cannot {doing}: {message}")),
                    _ => Self::Other(format!("cannot {doing}: {message} (HTTP {})", status.code)),
                }
            }
            other if is_unreachable(&other) => Self::Unreachable(format!(
                "cannot {doing}: the Kubernetes API server at {server} is unreachable ({other}); check the cluster is running and your --context (kubectl cluster-info)"
            )),
            other => Self::Other(format!("cannot {doing}: {other}")),
        }
    }
}

/// Whether the request never got an answer: the connection was refused, not resolved, or timed out.
fn is_unreachable(err: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<hyper_util::client::legacy::Error>().is_some_and(|e| e.is_connect()) {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            )
        {
            return true;
        }
        source = e.source();
    }
    false
}
