//! `requests`: the review queue, the requests for the products the caller may approve (new requests, and plan
//! changes of approved keys), read where the bridge projects them (see `review`).

use std::collections::BTreeMap;

use apiportal_core::resources::apikeyrequest::APIKeyRequest;
use jiff::Timestamp;
use kube::ResourceExt;

use super::{
    APIKEY_KIND,
    review::{Reader, Scope, Seen, plan_cell},
};
use crate::{
    cli::{GlobalArgs, RequestsArgs},
    error::Error,
    output::{Table, age, cell, print_list},
    session::{Session, split_reference},
};

pub async fn list(session: &Session, global: &GlobalArgs, args: &RequestsArgs) -> Result<(), Error> {
    let product = args.product.as_deref().map(|p| split_reference(p, &session.namespace)).transpose()?;
    // A product's requests are projected into its namespace; -n names a product namespace.
    let scope = match (&product, &global.namespace) {
        (Some((ns, _)), _) => Some(Scope::Namespaces(vec![ns.clone()])),
        (None, Some(ns)) if !session.all_namespaces => Some(Scope::Namespaces(vec![ns.clone()])),
        _ => None,
    };
    let scope_text = match &scope {
        Some(Scope::Namespaces(ns)) => format!(" in namespace {:?}", ns[0]),
        _ => " in any namespace".to_owned(),
    };
    let reader = match scope {
        Some(scope) => Reader::within(session, scope),
        None => Reader::new(session),
    };
    let mut requests = reader.list(global.selector.as_deref()).await?;
    if let Some((ns, name)) = &product {
        requests.retain(|r| r.namespace().as_ref() == Some(ns) && &r.spec.api_product_ref.name == name);
    }
    if args.pending {
        requests.retain(|r| Seen::of_projection(r).awaits_decision());
    }
    let mut may_approve: BTreeMap<(String, String), bool> = BTreeMap::new();
    for request in &requests {
        let product = (request.namespace().unwrap_or_default(), request.spec.api_product_ref.name.clone());
        if let std::collections::btree_map::Entry::Vacant(entry) = may_approve.entry(product) {
            let (ns, name) = entry.key().clone();
            entry.insert(can_approve(session, &ns, &name).await?);
        }
    }
    requests.retain(|r| may_approve[&(r.namespace().unwrap_or_default(), r.spec.api_product_ref.name.clone())]);
    requests.sort_by_key(|r| {
        (r.spec.requested_at.0, r.spec.api_key_ref.namespace.clone(), r.spec.api_key_ref.name.clone())
    });
    let seen: Vec<Seen> = requests.iter().map(Seen::of_projection).collect();
    print_list(
        global.output,
        global.no_headers,
        &requests,
        || table(&seen, Timestamp::now()),
        |r: &APIKeyRequest| format!("{APIKEY_KIND}/{}", r.spec.api_key_ref.name),
        &format!("{scope_text} for products you may approve"),
    )
}

/// The reviewers' requests table (requests come from many consumers' namespaces: the NAMESPACE column, the key's,
/// is always there).
pub fn table(requests: &[Seen], now: Timestamp) -> Table {
    let mut table = Table::new(vec!["NAMESPACE", "NAME", "PRODUCT", "PLAN", "USER", "PHASE", "AGE"]).with_wide(vec![
        "REVIEWED BY",
        "DECIDED",
        "REASON",
        "EXPIRES",
        "APPLICATION",
        "USE CASE",
    ]);
    for r in requests {
        let spec = &r.spec;
        table.rows.push(vec![
            spec.api_key_ref.namespace.clone(),
            spec.api_key_ref.name.clone(),
            r.product_id(),
            plan_cell(r.tier_in_force(), r.pending_plan_change()),
            spec.requested_by.user_id.clone(),
            spec.phase.to_string(),
            age(Some(&spec.requested_at), now),
            cell(spec.reviewed_by.as_deref()),
            decided(spec.reviewed_at.as_ref(), now),
            cell(spec.reason.as_deref()),
            super::keys::expires(spec.expires_at.as_ref()),
            cell(spec.application.as_deref()),
            cell(spec.use_case.as_deref()),
        ]);
    }
    table
}

/// The DECIDED cell: how long ago the last decision was made (`5m`), or `<none>`.
pub fn decided(at: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>, now: Timestamp) -> String {
    match at {
        Some(at) => age(Some(at), now),
        None => "<none>".to_owned(),
    }
}

/// Whether the caller holds the `approve` verb on the product (what the admission policy checks).
pub async fn can_approve(session: &Session, namespace: &str, product: &str) -> Result<bool, Error> {
    session.may("approve", "apiproducts", namespace, Some(product)).await
}
