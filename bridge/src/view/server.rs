//! Accepting connections for the view: TLS (unless explicitly disabled for local use), a cap on open
//! connections, HTTP/1.1 and HTTP/2, and a graceful drain on shutdown. Accept errors (out of file descriptors)
//! back off instead of spinning.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
};
use tokio_rustls::TlsAcceptor;
use tower_http::add_extension::AddExtension;

/// The peer of a connection, for per-client limits.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DRAIN: Duration = Duration::from_secs(10);

pub struct Listener {
    pub listener: TcpListener,
    pub tls: Option<TlsAcceptor>,
    pub max_connections: usize,
}

/// Serves `app` until `shutdown` flips, then lets open requests finish (up to 10 s).
pub async fn serve(listener: Listener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(listener.max_connections.max(1)));
    loop {
        tokio::select! {
            accepted = listener.listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Typically EMFILE: wait for connections to close rather than spin.
                        tracing::warn!(error = %e, "cannot accept a connection; backing off");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "too many open connections; closing a new one");
                    continue;
                };
                let service = TowerToHyperService::new(AddExtension::new(app.clone(), ClientAddr(peer)));
                let tls = listener.tls.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _slot = slot;
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(10));
                    match tls {
                        Some(acceptor) => {
                            let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await else {
                                return;
                            };
                            let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                            let _ = watcher.watch(connection).await;
                        }
                        None => {
                            let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                            let _ = watcher.watch(connection).await;
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}
