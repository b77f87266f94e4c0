//! What unit tests share: a stand-in for the API server.

use std::sync::{Arc, Mutex};

use axum::http;
use kube::Client;

/// What the bridge asked the stand-in API server: each request's path and query, and its `Accept` header.
pub type Asked = Arc<Mutex<Vec<(String, String)>>>;

/// A stand-in API server that records each request, answers every list empty and never answers a watch: caches
/// fed by it sync, empty, and stay so. (End-to-end tests run the bridge against a real API server.)
pub fn fake_api_server() -> (Client, Asked) {
    let asked = Asked::default();
    let record = asked.clone();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let uri = request.uri().to_string();
        let accept = request.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        record.lock().unwrap().push((uri.clone(), accept.to_owned()));
        async move {
            if uri.contains("watch=true") {
                std::future::pending::<()>().await;
            }
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"},
                "items": []});
            let body = kube::client::Body::from(serde_json::to_vec(&list).unwrap());
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        }
    });
    (Client::new(service, "default"), asked)
}
