//! Whole-output snapshots of what users read: the tables, `describe` for products and keys, every command's
//! help and the errors. A changed column, wording or command line shows up in review as a snapshot diff
//! (`cargo insta review`, or `INSTA_UPDATE=always cargo test` to accept).

use apiportal_core::{APIKey, APIProduct};
use clap::{CommandFactory, Parser};
use jiff::Timestamp;
use kube::core::Status;
use serde_json::{Value, json};

use super::{describe, keys, products, requests};
use crate::{cli::Cli, error::Error};

const NOW: &str = "2026-11-26T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// `seconds` from NOW, as the API server writes times.
fn at(seconds: i64) -> String {
    (now() + jiff::SignedDuration::from_secs(seconds)).to_string()
}

fn product(name: &str, approval: &str, status: Value) -> APIProduct {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
        "metadata": {"name": name, "namespace": "shop", "creationTimestamp": at(-3 * 86400)},
        "spec": {"displayName": "Toys API", "description": "Every toy in the shop", "version": "v1", "tags": ["retail"],
                 "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toys"},
                 "approvalMode": approval, "publishStatus": "Published"},
        "status": status,
    }))
    .unwrap()
}

fn api_key_product() -> APIProduct {
    product(
        "toys",
        "manual",
        json!({
            "hostnames": ["toys.example.com"],
            "discoveredPlans": [{"tier": "gold", "limits": {"daily": 100}, "description": "for production"},
                                {"tier": "bronze", "limits": {"daily": 10}}],
            "discoveredAuthScheme": {"authentication": {"api-key": {
                "apiKey": {"selector": {"matchLabels": {"devportal.kuadrant.io/apiproduct": "toys"}}},
                "credentials": {"customHeader": {"name": "X-API-KEY"}}}}},
            "conditions": [{"type": "Ready", "status": "True", "reason": "HTTPRouteAccepted", "message": "ok",
                            "lastTransitionTime": at(-3600)}],
        }),
    )
}

fn oidc_product() -> APIProduct {
    product(
        "ledger",
        "automatic",
        json!({
            "discoveredAuthScheme": {"authentication": {"jwt": {"jwt": {"issuerUrl": "https://sso.example.com/realms/shop"}}}},
            "oidcDiscovery": {"tokenEndpoint": "https://sso.example.com/realms/shop/protocol/openid-connect/token"},
        }),
    )
}

fn undiscovered_product() -> APIProduct {
    product("drafts", "automatic", Value::Null)
}

fn key(name: &str, ns: &str, tier: &str, status: Value) -> APIKey {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": at(-2 * 3600)},
        "spec": {"apiProductRef": {"name": "toys", "namespace": "shop"}, "planTier": tier,
                 "requestedBy": {"userId": "alice"}, "useCase": "the mobile app", "expiresAt": at(30 * 86400)},
        "status": status,
    }))
    .unwrap()
}

fn approved_key() -> APIKey {
    key(
        "toys-gold",
        "team-alice",
        "gold",
        json!({
            "phase": "Approved", "reviewedBy": "bob", "reviewedAt": at(-3600), "reason": "fine",
            "issued": {"generation": 1, "productUID": "p-1", "authPolicy": "shop/toys-keys",
                       "selector": {"devportal.kuadrant.io/apiproduct": "toys"}, "issuedAt": at(-600)},
            "previousKey": {"generation": 0, "validUntil": at(3000)},
            "apiHostname": "toys.example.com",
            "limits": {"daily": 100},
            "authScheme": {"authentication": {"api-key": {
                "apiKey": {"selector": {"matchLabels": {"devportal.kuadrant.io/apiproduct": "toys"}}},
                "credentials": {"customHeader": {"name": "X-API-KEY"}}}}},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KeyIssued",
                            "message": "the gateway accepts this key", "lastTransitionTime": at(-600)}],
            "history": [{"action": "Requested", "by": "alice", "at": at(-7200)},
                        {"action": "Approved", "by": "bob", "at": at(-3600), "reason": "fine"},
                        {"action": "Rotated", "by": "alice", "at": at(-600)}],
        }),
    )
}

fn pending_key() -> APIKey {
    key("toys-bronze", "team-carol", "bronze", json!({"phase": "Pending"}))
}

fn rejected_key() -> APIKey {
    key(
        "toys-silver",
        "team-alice",
        "silver",
        json!({"phase": "Rejected", "reviewedBy": "bob", "reviewedAt": at(-60), "reason": "no such tier"}),
    )
}

#[test]
fn products_table() {
    let list = [api_key_product(), oidc_product(), undiscovered_product()];
    insta::assert_snapshot!("products", products::table(&list, false, now()).render(false, false));
    insta::assert_snapshot!("products_all_namespaces_wide", products::table(&list, true, now()).render(true, false));
}

#[test]
fn keys_and_requests_tables() {
    let list = [approved_key(), pending_key(), rejected_key()];
    insta::assert_snapshot!("keys", keys::table(&list, false, now()).render(false, false));
    insta::assert_snapshot!("keys_all_namespaces_wide", keys::table(&list, true, now()).render(true, false));
    insta::assert_snapshot!("requests_wide_no_headers", requests::table(&list, now()).render(true, true));
}

#[test]
fn describe_product() {
    insta::assert_snapshot!(
        "describe_product_api_key",
        describe::render(&api_key_product(), &["toys.example.com".into()], now())
    );
    insta::assert_snapshot!("describe_product_oidc", describe::render(&oidc_product(), &[], now()));
    insta::assert_snapshot!("describe_product_undiscovered", describe::render(&undiscovered_product(), &[], now()));
}

#[test]
fn describe_key() {
    insta::assert_snapshot!("describe_key_approved_rotated", keys::render(&approved_key(), now()));
    insta::assert_snapshot!("describe_key_pending", keys::render(&pending_key(), now()));
    insta::assert_snapshot!("describe_key_rejected", keys::render(&rejected_key(), now()));
}

/// Every command's `--help`, named by its path (`help_key_rotate`).
#[test]
fn help_of_every_command() {
    fn walk(command: &mut clap::Command, path: &str) {
        let help = command.render_long_help().to_string();
        insta::assert_snapshot!(format!("help_{path}"), help);
        for sub in command.get_subcommands_mut() {
            let name = sub.get_name().to_owned();
            if name != "help" {
                walk(sub, &format!("{path}_{name}"));
            }
        }
    }
    let mut cli = Cli::command();
    cli.build();
    walk(&mut cli, "kubectl-apiportal");
}

fn api_error(code: u16, message: &str, named: bool) -> kube::Error {
    let status: Status = serde_json::from_value(json!({
        "status": "Failure", "code": code, "message": message,
        "details": if named { json!({"name": "toys-gold", "kind": "apikeys"}) } else { json!({}) },
    }))
    .unwrap();
    kube::Error::Api(status.boxed())
}

#[test]
fn errors_say_what_failed_and_what_to_do() {
    let server = "https://127.0.0.1:6443/";
    let doing = "approve apikey team-alice/toys-gold";
    let cases = [
        ("401", api_error(401, "Unauthorized", false)),
        (
            "403",
            api_error(
                403,
                "apikeys.devportal.kuadrant.io \"toys-gold\" is forbidden: User \"carol\" cannot patch resource \"apikeys/status\"",
                true,
            ),
        ),
        ("404_object", api_error(404, "apikeys.devportal.kuadrant.io \"toys-gold\" not found", true)),
        ("404_type", api_error(404, "the server could not find the requested resource", false)),
        ("409", api_error(409, "Operation cannot be fulfilled: the object has been modified", true)),
        ("422", api_error(422, "spec.planTier: Required value", true)),
        ("500", api_error(500, "etcdserver: request timed out", false)),
    ];
    let rendered: Vec<String> =
        cases.into_iter().map(|(name, e)| format!("{name}: {}", Error::from_kube(e, server, doing))).collect();
    insta::assert_snapshot!("errors_from_the_api_server", rendered.join("\n"));
    insta::assert_snapshot!("error_not_installed", Error::not_installed().to_string());
}

#[test]
fn usage_errors() {
    let usage = |args: &[&str]| {
        let e = Cli::try_parse_from(std::iter::once("kubectl-apiportal").chain(args.iter().copied())).unwrap_err();
        assert!(e.use_stderr(), "{args:?} is an error, not help");
        e.render().to_string()
    };
    insta::assert_snapshot!("usage_revoke_without_reference", usage(&["revoke"]));
    insta::assert_snapshot!("usage_unknown_flag", usage(&["products", "--colour"]));
    insta::assert_snapshot!(
        "usage_bad_duration",
        usage(&["request", "shop/toys", "--plan", "gold", "--expires-in", "soon"])
    );
}
