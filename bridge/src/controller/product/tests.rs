//! The product reconcile's write against a scripted API server: what is planned is tested in `plan`.

use apiportal_core::{APIProduct, APIProductStatus, labels};
use axum::http::Method;
use kube::Resource;
use serde_json::{Value, json};

use super::{Written, write_status};
use crate::{
    controller::apikey::plan::tests::settings,
    testing::{context, served},
};

const SYNCED: &str = "2026-11-26T12:00:00Z";
const DOCUMENT: &str = r#"{"openapi": "3.0.0", "info": {"title": "Toys", "version": "1"}, "paths": {}}"#;

fn product(status: Value) -> APIProduct {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
        "metadata": {"name": "toys", "namespace": "shop", "uid": "product-uid-1", "resourceVersion": "3"},
        "spec": {"displayName": "Toys", "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toys"}},
        "status": status,
    }))
    .unwrap()
}

fn status(openapi_raw: Option<&str>, synced: &str) -> APIProductStatus {
    let openapi = openapi_raw.map(|raw| json!({"raw": raw, "lastSyncTime": synced}));
    serde_json::from_value(json!({"hostnames": ["toys.example.com"], "openapi": openapi})).unwrap()
}

fn status_path() -> String {
    format!("{}/toys/status", APIProduct::url_path(&(), Some("shop")))
}

fn product_path() -> String {
    format!("{}/toys", APIProduct::url_path(&(), Some("shop")))
}

#[tokio::test]
async fn a_status_that_has_not_changed_is_not_written() {
    let (ctx, api) = context(settings());
    let p = product(json!({"hostnames": ["toys.example.com"]}));
    let written = served(api, write_status(&ctx, &p, "shop", status(None, SYNCED)), |api| async move { api }).await;
    assert_eq!(written.unwrap(), Written::Done);
}

#[tokio::test]
async fn a_changed_status_is_applied_whole_by_the_bridges_field_manager() {
    let (ctx, api) = context(settings());
    let p = product(json!({}));
    let desired = status(Some(DOCUMENT), SYNCED);
    let expected = desired.clone();
    let written = served(api, write_status(&ctx, &p, "shop", desired), |mut api| async move {
        let request = api.next(Method::PATCH, &status_path()).await;
        assert_eq!(request.content_type, "application/apply-patch+yaml");
        assert!(request.uri.contains(&format!("fieldManager={}", labels::BRIDGE_FIELD_MANAGER)), "{}", request.uri);
        assert!(request.uri.contains("force=true"), "the bridge owns the status: {}", request.uri);
        assert_eq!(
            request.body,
            json!({"apiVersion": apiportal_core::API_VERSION, "kind": "APIProduct", "status": expected})
        );
        request.ok(&product(json!(expected)));
        api
    })
    .await;
    assert_eq!(written.unwrap(), Written::Done);
}

#[tokio::test]
async fn a_kept_document_the_cache_dropped_is_read_back_and_written_whole() {
    let (ctx, api) = context(settings());
    let p = product(json!({}));
    let written = served(api, write_status(&ctx, &p, "shop", status(Some(""), SYNCED)), |mut api| async move {
        let live = product(json!(status(Some(DOCUMENT), SYNCED)));
        api.next(Method::GET, &product_path()).await.ok(&live);
        let request = api.next(Method::PATCH, &status_path()).await;
        assert_eq!(request.body["status"]["openapi"]["raw"], DOCUMENT, "never an empty document over the real one");
        request.ok(&live);
        api
    })
    .await;
    assert_eq!(written.unwrap(), Written::Done);
}

#[tokio::test]
async fn a_kept_document_that_changed_meanwhile_is_not_written_under_the_old_time() {
    let (ctx, api) = context(settings());
    let p = product(json!({}));
    let written = served(api, write_status(&ctx, &p, "shop", status(Some(""), SYNCED)), |mut api| async move {
        let live = product(json!(status(Some("a newer document"), "2026-11-26T12:05:00Z")));
        api.next(Method::GET, &product_path()).await.ok(&live);
        api
    })
    .await;
    assert_eq!(written.unwrap(), Written::NotYet, "no write: the reconcile tries again");
}
