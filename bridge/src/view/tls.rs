//! TLS for the view: the certificate and key come from files (a cert-manager Secret mounted into the Pod works)
//! and are read again when the files change, without a restart. Connections already open keep the certificate
//! they started with.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use rustls::{
    ServerConfig,
    crypto::ring::sign::any_supported_type,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// The certificate in force, swapped when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>)>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Why a certificate and key pair cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate {0}: {1}")]
    Certificate(PathBuf, #[source] rustls::pki_types::pem::Error),
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("cannot read the private key {0}: {1}")]
    Key(PathBuf, #[source] rustls::pki_types::pem::Error),
    #[error("unsupported private key {0}: {1}")]
    UnsupportedKey(PathBuf, #[source] rustls::Error),
}

fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let certificate_error = |e| TlsError::Certificate(cert_path.to_owned(), e);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(certificate_error)?
        .collect::<Result<_, _>>()
        .map_err(certificate_error)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key(key_path.to_owned(), e))?;
    let signing = any_supported_type(&key).map_err(|e| TlsError::UnsupportedKey(key_path.to_owned(), e))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

impl ReloadingCert {
    pub fn load(cert_path: PathBuf, key_path: PathBuf) -> Result<Arc<Self>, TlsError> {
        let cert = load(&cert_path, &key_path)?;
        let stamp = modified(&cert_path).max(modified(&key_path));
        Ok(Arc::new(Self { cert_path, key_path, current: RwLock::new((cert, stamp)) }))
    }

    /// Reads the files again if they changed since last read; a broken pair is logged and the old one kept.
    pub fn reload_if_changed(&self) {
        let stamp = modified(&self.cert_path).max(modified(&self.key_path));
        if stamp == self.current.read().expect("never poisoned").1 {
            return;
        }
        match load(&self.cert_path, &self.key_path) {
            Ok(cert) => {
                *self.current.write().expect("never poisoned") = (cert, stamp);
                tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
            }
            Err(e) => tracing::warn!(error = %e, "new certificate not usable; keeping the current one"),
        }
    }

    /// Checks the files every few seconds, forever.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(RELOAD_CHECK);
        loop {
            tick.tick().await;
            self.reload_if_changed();
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("never poisoned").0.clone())
    }
}

/// A TLS server configuration serving `cert` over HTTP/2 and HTTP/1.1.
pub fn server_config(cert: Arc<ReloadingCert>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
