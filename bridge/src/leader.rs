//! Leader election over a coordination.k8s.io Lease: only the holder reconciles; every replica serves the view.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::{mpsc, watch};

use apiportal_core::bridge_args::Args;

use crate::metrics::Metrics;

/// Holds the Lease as long as it can, flipping `leader`. On each acquisition it tells every controller to
/// reconcile everything (their shared streams only carry changes). Releases the Lease on shutdown.
pub async fn run(
    client: Client,
    args: &Args,
    leader: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    on_elected: Vec<mpsc::UnboundedSender<()>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), kube_lease_manager::LeaseManagerError> {
    let identity = args.identity();
    let grace = (args.lease_duration / 3).max(1);
    let manager = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration)
        .with_grace(grace)
        .with_field_manager(format!("apiportal-bridge-{identity}"))
        .build()
        .await?;
    let (mut state, task) = manager.watch().await;
    tracing::info!(%identity, lease = %args.lease_name, "waiting for leadership");
    loop {
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    break;
                }
                let is_leader = *state.borrow_and_update();
                leader.store(is_leader, Ordering::Release);
                metrics.leader.set(i64::from(is_leader));
                if is_leader {
                    tracing::info!(%identity, "became leader: reconciling");
                    for tx in &on_elected {
                        let _ = tx.send(());
                    }
                } else {
                    tracing::warn!(%identity, "lost leadership: reconciling stops");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    leader.store(false, Ordering::Release);
    metrics.leader.set(0);
    drop(state);
    match task.await {
        Ok(Ok(_)) => tracing::info!("lease released"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease"),
        Err(e) => tracing::warn!(error = %e, "lease task failed"),
    }
    Ok(())
}
