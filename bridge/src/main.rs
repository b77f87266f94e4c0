//! `apiportal-bridge`: thin entry point. Parses flags, sets up logging, starts the shared caches, the
//! controllers, leader election and the view, and shuts all of it down gracefully on SIGTERM.

use std::{
    process::ExitCode,
    sync::{Arc, atomic::AtomicBool},
};

use apiportal_bridge::{
    args::Args,
    caches::Caches,
    controller::{self, Context, apikey::plan::Settings},
    fetch::Fetcher,
    leader,
    metrics::{self, Metrics},
    notify::Notifier,
    telemetry,
    view::{self, Endpoints, View, auth::Authorizer},
    webhook::Webhook,
};
use clap::Parser;
use futures::Stream;
use kube::{
    Client,
    runtime::events::{Recorder, Reporter},
};
use tokio::sync::{mpsc, watch};

/// How long in-flight reconciles get to finish on shutdown, before the Lease is released.
const CONTROLLER_DRAIN: std::time::Duration = std::time::Duration::from_secs(15);

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init(args.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "bridge stopped");
            ExitCode::FAILURE
        }
    }
}

fn signals(rx: mpsc::UnboundedReceiver<()>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|v| (v, rx)) })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

async fn connect(args: &Args) -> Result<Client, Box<dyn std::error::Error>> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions { context: args.context.clone(), ..Default::default() };
    let config = match (&args.kubeconfig, &args.context) {
        (Some(path), _) => kube::Config::from_custom_kubeconfig(Kubeconfig::read_from(path)?, &options).await?,
        (None, Some(_)) => kube::Config::from_kubeconfig(&options).await?,
        (None, None) => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let client = connect(&args).await.map_err(|e| format!("cannot configure the Kubernetes client: {e}"))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let metrics_listener = match args.metrics_listen {
        Some(addr) => {
            Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?)
        }
        None => None,
    };
    let bridge_user = whoami(&client).await?;
    let (caches, subs) = Caches::start(&client, args.namespace.as_deref(), &args.enforcement_namespace);
    let metrics = Arc::new(Metrics::default());
    let leader_flag = Arc::new(AtomicBool::new(false));
    let identity = args.identity();
    let webhook = match &args.webhook_secret {
        Some(reference) => {
            let (ns, name) = reference
                .split_once('/')
                .ok_or_else(|| format!("--webhook-secret {reference:?}: expected NAMESPACE/NAME"))?;
            Some(Webhook::start(client.clone(), ns, name, metrics.clone()))
        }
        None => None,
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        notifier: Notifier {
            recorder: Recorder::new(
                client.clone(),
                Reporter { controller: "apiportal-bridge".into(), instance: Some(identity.clone()) },
            ),
            webhook,
        },
        caches: caches.clone(),
        metrics: metrics.clone(),
        fetcher: Fetcher::new(args.fetch_timeout),
        leader: leader_flag.clone(),
        settings: Settings {
            bridge_user: bridge_user.clone(),
            enforcement_namespace: args.enforcement_namespace.clone(),
            expiry_warning: args.expiry_warning,
        },
        lifetimes: controller::lifetimes::KeyLifetimes::new(client.clone(), &args.lease_namespace),
        openapi_max_bytes: args.openapi_max_bytes,
        max_concurrent_reconciles: args.max_concurrent_reconciles,
    });
    let (product_tx, product_rx) = mpsc::unbounded_channel();
    let (key_tx, key_rx) = mpsc::unbounded_channel();
    tokio::spawn(metrics::sample_caches(caches.clone(), metrics.clone(), args.expiry_warning));
    let (stop_controllers, controllers_stop) = watch::channel(false);
    let stopped = |rx: watch::Receiver<bool>| async move {
        let mut rx = rx;
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let controllers = vec![
        tokio::spawn(controller::product::controller(
            ctx.clone(),
            subs.products_for_products,
            subs.routes,
            subs.auth_policies,
            subs.plan_policies,
            signals(product_rx),
            stopped(controllers_stop.clone()),
        )),
        tokio::spawn(controller::apikey::controller(
            ctx.clone(),
            subs.keys,
            subs.products_for_keys,
            subs.key_triggers,
            signals(key_rx),
            stopped(controllers_stop.clone()),
        )),
    ];

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let view =
        Arc::new(View { caches, auth: Authorizer::new(client.clone(), args.auth_cache_ttl), metrics: metrics.clone() });
    tracing::info!(listen = %args.listen, metrics_listen = ?args.metrics_listen, %identity, enforcement_namespace = %args.enforcement_namespace, "bridge starting");
    let mut servers = vec![tokio::spawn(view::serve(listener, view.clone(), Endpoints::All, shutdown_rx.clone()))];
    if let Some(l) = metrics_listener {
        servers.push(tokio::spawn(view::serve(l, view.clone(), Endpoints::ProbesAndMetrics, shutdown_rx.clone())));
    }
    let election = {
        let (client, args, metrics, shutdown_rx) = (client.clone(), args.clone(), metrics.clone(), shutdown_rx.clone());
        tokio::spawn(async move {
            leader::run(client, &args, leader_flag, metrics, vec![product_tx, key_tx], shutdown_rx).await
        })
    };

    shutdown_signal().await;
    // Controllers first (no new work, in-flight reconciles finish), then the Lease, then the servers drain.
    tracing::info!("shutting down: finishing reconciles, then releasing the lease and finishing open requests");
    let _ = stop_controllers.send(true);
    for mut controller in controllers {
        // A controller whose cache never synced holds its queue until it does: do not wait for it forever.
        if tokio::time::timeout(CONTROLLER_DRAIN, &mut controller).await.is_err() {
            tracing::warn!("a controller did not finish within {}s; stopping it", CONTROLLER_DRAIN.as_secs());
            controller.abort();
        }
    }
    let _ = shutdown_tx.send(true);
    if let Ok(Err(e)) = election.await {
        tracing::warn!(error = %e, "leader election ended with an error");
    }
    for server in servers {
        let _ = server.await;
    }
    Ok(())
}

/// The bridge's own user name as the API server knows it: the reviewer it records for its own decisions.
async fn whoami(client: &Client) -> Result<String, Box<dyn std::error::Error>> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let review = kube::Api::<SelfSubjectReview>::all(client.clone())
        .create(&Default::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| format!("cannot ask the API server who the bridge is (SelfSubjectReview): {e}"))?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .ok_or_else(|| "the API server did not say who the bridge is".into())
}
