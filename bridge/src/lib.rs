//! apiportal's bridge: one daemon, two jobs over one shared watch cache. The controller (run by the Lease
//! holder only) reconciles APIProducts (discovery) and APIKeys (approval, Secrets); the view (every replica)
//! serves a read-only, authenticated JSON API for catalog consumers such as Backstage.

pub mod caches;
pub mod controller;
pub mod fetch;
pub mod leader;
pub mod metrics;
pub mod notify;
pub mod supervise;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod view;
pub mod webhook;

/// Everything a reconcile can fail with. Variant names are metric labels, so they are specific.
#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[source] kube::Error),
    #[error("finalizer failed: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("cannot generate a key from the OS random source: {0}")]
    KeyGeneration(#[source] rand::rngs::SysError),
    #[error("{0} has no namespace")]
    MissingNamespace(String),
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Self::Kube(e)
    }
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Finalizer(_) => "finalizer",
            Self::KeyGeneration(_) => "key_generation",
            Self::MissingNamespace(_) => "missing_namespace",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
