//! What unit tests share: stand-ins for the API server. `fake_api_server` answers every list empty (for caches);
//! `ApiServer` is scripted request by request (for what the controllers do), as kube-rs's controller-rs tests its
//! reconciler with `tower_test::mock`. End-to-end tests run the bridge against a real API server.

use std::{
    future::Future,
    pin::pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::http::{self, Method};
use futures::FutureExt;
use http_body_util::BodyExt;
use kube::{
    Client,
    client::Body,
    runtime::events::{Recorder, Reporter},
};
use serde_json::{Value, json};
use tower_test::mock;

use crate::{
    caches::Caches,
    controller::{Context, apikey::plan::Settings, lifetimes::KeyLifetimes},
    fetch::{FetchPolicy, Fetcher},
    metrics::Metrics,
    notify::Notifier,
};

/// What the bridge asked the stand-in API server: each request's path and query, and its `Accept` header.
pub type Asked = Arc<Mutex<Vec<(String, String)>>>;

/// A stand-in API server that records each request, answers every list empty and never answers a watch: caches
/// fed by it sync, empty, and stay so. (End-to-end tests run the bridge against a real API server.)
pub fn fake_api_server() -> (Client, Asked) {
    let asked = Asked::default();
    let record = asked.clone();
    let service = tower::service_fn(move |request: http::Request<Body>| {
        let uri = request.uri().to_string();
        let accept = request.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        record.lock().unwrap().push((uri.clone(), accept.to_owned()));
        async move {
            if uri.contains("watch=true") {
                std::future::pending::<()>().await;
            }
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"},
                "items": []});
            let body = Body::from(serde_json::to_vec(&list).unwrap());
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        }
    });
    (Client::new(service, "default"), asked)
}

/// A reconcilers' context whose client talks to a scripted `ApiServer`, with empty caches and no webhook.
pub fn context(settings: Settings) -> (Context, ApiServer) {
    let (service, handle) = mock::pair::<http::Request<Body>, http::Response<Body>>();
    let client = Client::new(service, "default");
    let reporter = Reporter { controller: "apiportal-bridge".into(), instance: None };
    let ctx = Context {
        client: client.clone(),
        caches: Caches::empty(),
        metrics: Arc::new(Metrics::default()),
        fetcher: Fetcher::new(Duration::from_secs(5), FetchPolicy::default()),
        notifier: Notifier { recorder: Recorder::new(client.clone(), reporter), webhook: None },
        lifetimes: KeyLifetimes::new(client, "apiportal-system", Caches::empty(), None),
        leader: Arc::new(true.into()),
        settings,
        openapi_max_bytes: 1 << 20,
        max_concurrent_reconciles: 1,
        own_writes: Default::default(),
        created_copies: Default::default(),
        slots: Default::default(),
    };
    (ctx, ApiServer { handle, expecting: Arc::default() })
}

/// The API server's side of a test: each request the code under test makes, taken in order, checked and answered.
pub struct ApiServer {
    handle: mock::Handle<http::Request<Body>, http::Response<Body>>,
    /// The request the script waits for, named in the failure when it never comes.
    expecting: Arc<Mutex<String>>,
}

/// One request, as the API server received it.
pub struct Request {
    pub method: Method,
    /// Path and query.
    pub uri: String,
    pub content_type: String,
    /// The body as JSON (`Null` when there is none).
    pub body: Value,
    respond: mock::SendResponse<http::Response<Body>>,
}

impl ApiServer {
    /// The next request, which must be `method` on `path` (the query is not compared: see `Request::uri`).
    pub async fn next(&mut self, method: Method, path: &str) -> Request {
        *self.expecting.lock().unwrap() = format!("{method} {path}");
        let (request, respond) = self.handle.next_request().await.expect("the client is gone");
        let request = Request::read(request, respond).await;
        assert_eq!(
            (&request.method, request.uri.split('?').next().unwrap()),
            (&method, path),
            "unexpected request (body: {})",
            request.body
        );
        request
    }
}

impl Request {
    async fn read(request: http::Request<Body>, respond: mock::SendResponse<http::Response<Body>>) -> Self {
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.expect("a readable body").to_bytes();
        Self {
            method: parts.method,
            uri: parts.uri.to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") },
            respond,
        }
    }

    /// Answers `code` with `body`.
    pub fn answer(self, code: u16, body: &impl serde::Serialize) {
        let response = http::Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap()))
            .unwrap();
        self.respond.send_response(response);
    }

    /// Answers 200 with `body`.
    pub fn ok(self, body: &impl serde::Serialize) {
        self.answer(200, body);
    }

    /// Answers with what the request sent (a create or apply the API server accepted as is).
    pub fn echo(self, code: u16) {
        let body = self.body.clone();
        self.answer(code, &body);
    }

    /// Refuses the request with a Kubernetes `Status` of `code` and `reason`.
    pub fn refuse(self, code: u16, reason: &str) {
        let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
                            "reason": reason, "message": format!("refused by the test: {reason}")});
        self.answer(code, &status);
    }
}

/// Runs `act` while `script` plays `server`, and returns what `act` returned. Fails when `act` makes a request
/// the script does not expect (a wrong one, or one more), or finishes while the script still expects one.
pub async fn served<T, S>(server: ApiServer, act: impl Future<Output = T>, script: impl FnOnce(ApiServer) -> S) -> T
where
    S: Future<Output = ApiServer>,
{
    let expecting = server.expecting.clone();
    let (mut act, mut script) = (pin!(act), pin!(script(server)));
    // A hang is a bug (a request never answered), never a slow machine: this only turns it into a failure.
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut finished = None;
        let mut server = loop {
            tokio::select! {
                out = &mut act, if finished.is_none() => finished = Some(out),
                server = &mut script => break server,
            }
            if finished.is_some() {
                // Every request act made has been answered: a script still waiting waits for one never made.
                match script.as_mut().now_or_never() {
                    Some(server) => break server,
                    None => panic!("act finished; the API server still expected {}", expecting.lock().unwrap()),
                }
            }
        };
        match finished {
            Some(out) => out,
            None => tokio::select! {
                out = &mut act => out,
                Some((request, _)) = server.handle.next_request() =>
                    panic!("a request the script did not expect: {} {}", request.method(), request.uri()),
            },
        }
    })
    .await
    .unwrap_or_else(|_| panic!("act and the script wait for each other (expected: {})", expecting.lock().unwrap()))
}
