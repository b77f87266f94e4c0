//! Supervision of the bridge's background tasks (watch caches, snapshot builder, controllers, sweeper, leader
//! election, servers, samplers). A task that ends before the bridge shuts down, fails or panics would otherwise
//! vanish with its `JoinHandle`, leaving a bridge that serves a frozen snapshot, or holds the Lease without
//! reconciling, while it reports itself healthy. Here each is spawned by name; one that stops is logged with its
//! name and cause, counted (`apiportal_bridge_task_failures_total{task}`), and fails `/readyz` and `/healthz`
//! from then on, so the Pod leaves its Service and the kubelet restarts it.
//!
//! Panics are counted process-wide as well (`apiportal_bridge_panics_total`), wherever they happen (a request's
//! connection task, a blocking thread): a panic is never only a line in a log. Release builds abort on panic
//! (`panic = "abort"`), so there a panic restarts the container outright.

use std::{
    fmt::Display,
    panic::AssertUnwindSafe,
    sync::{
        Arc, LazyLock, Mutex, Once,
        atomic::{AtomicBool, Ordering},
    },
};

use futures::FutureExt;
use prometheus_client::metrics::counter::Counter;
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, TaskLabels};

/// Panics in this process since it started (registered as `apiportal_bridge_panics`).
pub static PANICS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Counts every panic of the process in `PANICS` and logs it, then lets the previous hook report it as usual.
/// Idempotent.
pub fn count_panics() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.inc();
            tracing::error!(panic = %info, "a thread panicked");
            previous(info);
        }));
    });
}

/// How a supervised task is meant to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Runs until the bridge shuts down: ending earlier is a failure.
    UntilShutdown,
    /// Runs to completion (e.g. waiting for the caches' first sync): only an error or a panic is a failure.
    ToCompletion,
}

/// What a task's output says about how it ended: `()` nothing, `Result` its error.
pub trait Outcome: Send + 'static {
    fn error(self) -> Option<String>;
}

impl Outcome for () {
    fn error(self) -> Option<String> {
        None
    }
}

impl<E: Display + Send + 'static> Outcome for Result<(), E> {
    fn error(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// A task that stopped when it should not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub task: String,
    pub cause: String,
}

impl Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "background task {:?} stopped: {}", self.task, self.cause)
    }
}

/// Spawns and watches the bridge's background tasks.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    stopping: AtomicBool,
    failures: Mutex<Vec<Failure>>,
}

impl Supervisor {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { inner: Arc::new(Inner { metrics, stopping: AtomicBool::new(false), failures: Mutex::default() }) }
    }

    /// Spawns `future` as the task `name`. The handle may be awaited or aborted (shutdown); an aborted task is
    /// not a failure.
    pub fn spawn<F>(&self, name: impl Into<String>, lifetime: Lifetime, future: F) -> JoinHandle<()>
    where
        F: Future + Send + 'static,
        F::Output: Outcome,
    {
        let (inner, name) = (self.inner.clone(), name.into());
        tokio::spawn(async move {
            let cause = match AssertUnwindSafe(future).catch_unwind().await {
                Ok(output) => match output.error() {
                    Some(error) => Some(format!("failed: {error}")),
                    None if lifetime == Lifetime::UntilShutdown => Some("ended".to_owned()),
                    None => None,
                },
                Err(payload) => Some(format!("panicked: {}", panic_message(payload.as_ref()))),
            };
            match cause {
                Some(cause) if !inner.stopping.load(Ordering::Acquire) => inner.failed(Failure { task: name, cause }),
                Some(cause) => tracing::warn!(task = %name, %cause, "background task stopped during shutdown"),
                None => {}
            }
        })
    }

    /// The bridge is shutting down: tasks ending from now on end as they should.
    pub fn stopping(&self) {
        self.inner.stopping.store(true, Ordering::Release);
    }

    /// The tasks that stopped when they should not have, in the order they did.
    pub fn failures(&self) -> Vec<Failure> {
        self.inner.failures.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `Err` naming the first task that stopped, if any did: the bridge is then neither ready nor healthy.
    pub fn check(&self) -> Result<(), Failure> {
        match self.failures().into_iter().next() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

impl Inner {
    fn failed(&self, failure: Failure) {
        tracing::error!(task = %failure.task, cause = %failure.cause, "a background task stopped: the bridge reports itself unhealthy until it is restarted");
        self.metrics.task_failures.get_or_create(&TaskLabels { task: failure.task.clone() }).inc();
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).push(failure);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor() -> (Supervisor, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        (Supervisor::new(metrics.clone()), metrics)
    }

    fn failures_metric(metrics: &Metrics, task: &str) -> u64 {
        metrics.task_failures.get_or_create(&TaskLabels { task: task.to_owned() }).get()
    }

    #[tokio::test]
    async fn a_task_that_panics_makes_the_bridge_unhealthy_and_is_named() {
        let (supervisor, metrics) = supervisor();
        supervisor.spawn("snapshot", Lifetime::UntilShutdown, std::future::pending::<()>());
        assert_eq!(supervisor.check(), Ok(()));
        fn build() {
            panic!("index out of bounds");
        }
        let handle = supervisor.spawn("builder", Lifetime::UntilShutdown, async {
            tokio::task::yield_now().await;
            build()
        });
        handle.await.expect("the supervisor catches the panic");
        let failure = supervisor.check().expect_err("a panicked task is a failure");
        assert_eq!(failure.task, "builder");
        assert_eq!(failure.cause, "panicked: index out of bounds");
        assert_eq!(failure.to_string(), "background task \"builder\" stopped: panicked: index out of bounds");
        assert_eq!(failures_metric(&metrics, "builder"), 1);
        assert_eq!(failures_metric(&metrics, "snapshot"), 0);
    }

    #[tokio::test]
    async fn a_task_that_ends_or_fails_before_shutdown_is_a_failure() {
        let (supervisor, _) = supervisor();
        supervisor.spawn("sampler", Lifetime::UntilShutdown, async {}).await.unwrap();
        supervisor
            .spawn("election", Lifetime::UntilShutdown, async { Err::<(), _>("the Lease API is gone") })
            .await
            .unwrap();
        let failures: Vec<String> = supervisor.failures().iter().map(ToString::to_string).collect();
        assert_eq!(
            failures,
            [
                "background task \"sampler\" stopped: ended",
                "background task \"election\" stopped: failed: the Lease API is gone"
            ]
        );
    }

    #[tokio::test]
    async fn a_task_run_to_completion_may_end_but_not_fail() {
        let (supervisor, _) = supervisor();
        supervisor.spawn("first sync", Lifetime::ToCompletion, async {}).await.unwrap();
        assert_eq!(supervisor.check(), Ok(()));
        supervisor.spawn("first sync", Lifetime::ToCompletion, async { Err::<(), _>("writer dropped") }).await.unwrap();
        assert_eq!(supervisor.check().unwrap_err().cause, "failed: writer dropped");
    }

    #[tokio::test]
    async fn tasks_ending_during_shutdown_or_aborted_are_no_failure() {
        let (supervisor, _) = supervisor();
        let aborted = supervisor.spawn("server", Lifetime::UntilShutdown, std::future::pending::<()>());
        aborted.abort();
        assert!(aborted.await.unwrap_err().is_cancelled());
        supervisor.stopping();
        supervisor.spawn("controller", Lifetime::UntilShutdown, async {}).await.unwrap();
        assert_eq!(supervisor.check(), Ok(()));
    }

    /// A running view over synced (empty) caches: ready and healthy until a supervised task dies, then neither,
    /// naming the task.
    #[tokio::test]
    async fn a_dead_task_fails_both_probes_of_a_running_view() {
        use axum::{body::Body, http::Request};
        use tower::ServiceExt;

        use crate::view::{self, Documents, Endpoints, Limits, View, auth, snapshot};

        let (supervisor, metrics) = supervisor();
        let (client, _) = crate::testing::fake_api_server();
        let (caches, _subscriptions) = crate::caches::Caches::start(&supervisor, &client, None, "kuadrant-system");
        let current = Arc::new(snapshot::Current::default());
        supervisor.spawn(
            "snapshot builder",
            Lifetime::UntilShutdown,
            snapshot::keep_current(caches.clone(), current.clone()),
        );
        let settings = auth::Settings {
            audiences: vec!["apiportal-bridge".into()],
            ttl: std::time::Duration::from_secs(10),
            max_in_flight: 1,
            max_per_caller: 1,
            unknown_tokens_per_minute: 1,
        };
        let view = Arc::new(View {
            caches,
            auth: auth::Authorizer::new(client.clone(), settings, metrics.clone()),
            metrics,
            snapshot: current,
            documents: Documents::new(client),
            tasks: supervisor.clone(),
        });
        let limits = Limits { request_timeout: std::time::Duration::from_secs(30), max_concurrent_requests: 8 };
        let router = view::router(view, Endpoints::ProbesAndMetrics, &limits);
        let probe = |path: &'static str| {
            let router = router.clone();
            async move {
                let answer = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
                let status = answer.status().as_u16();
                let body = axum::body::to_bytes(answer.into_body(), 1024).await.unwrap();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while probe("/readyz").await.0 != 200 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the view becomes ready over synced caches");
        assert_eq!(probe("/healthz").await, (200, "ok\n".to_owned()));

        fn build() {
            panic!("a bug");
        }
        supervisor.spawn("metrics sampler", Lifetime::UntilShutdown, async { build() }).await.unwrap();
        let stopped = "background task \"metrics sampler\" stopped; see the bridge's log\n".to_owned();
        assert_eq!(probe("/readyz").await, (503, stopped.clone()));
        assert_eq!(probe("/healthz").await, (503, stopped));
    }

    #[test]
    fn every_panic_of_the_process_is_counted() {
        count_panics();
        count_panics();
        let before = PANICS.get();
        let thread = std::thread::spawn(|| panic!("a blocking task's bug"));
        assert!(thread.join().is_err());
        assert!(PANICS.get() > before, "the panic was counted");
    }
}
