//! `requests`: the review queue, requests for the products the caller may approve, across namespaces.

use std::collections::BTreeMap;

use apiportal_core::{APIKey, KeyPhase};
use jiff::Timestamp;
use kube::{Api, ResourceExt, api::ListParams};

use super::APIKEY_KIND;
use crate::{
    cli::{GlobalArgs, RequestsArgs},
    error::Error,
    output::{Table, age, cell, print_list},
    session::{Session, split_reference},
};

pub async fn list(session: &Session, global: &GlobalArgs, args: &RequestsArgs) -> Result<(), Error> {
    // Requests live in consumers' namespaces: look everywhere unless a namespace was named.
    let (api, scope): (Api<APIKey>, String) = match (&global.namespace, session.all_namespaces) {
        (Some(ns), false) => (Api::namespaced(session.client.clone(), ns), format!(" in namespace {ns:?}")),
        _ => (Api::all(session.client.clone()), " in any namespace".to_owned()),
    };
    let mut params = ListParams::default();
    if let Some(selector) = &global.selector {
        params = params.labels(selector);
    }
    let mut keys = api
        .list(&params)
        .await
        .map_err(|e| Error::from_kube(e, &session.server, &format!("list apikeys{scope}")))?
        .items;
    if let Some(product) = &args.product {
        let (ns, name) = split_reference(product, &session.namespace)?;
        keys.retain(|k| k.spec.api_product_ref.name == name && k.product_namespace() == ns);
    }
    if args.pending {
        keys.retain(|k| k.phase() == KeyPhase::Pending);
    }
    let mut may_approve: BTreeMap<(String, String), bool> = BTreeMap::new();
    for key in &keys {
        let product = (key.product_namespace(), key.spec.api_product_ref.name.clone());
        if let std::collections::btree_map::Entry::Vacant(entry) = may_approve.entry(product) {
            let (ns, name) = entry.key().clone();
            entry.insert(can_approve(session, &ns, &name).await?);
        }
    }
    keys.retain(|k| may_approve[&(k.product_namespace(), k.spec.api_product_ref.name.clone())]);
    keys.sort_by_key(|k| (k.metadata.creation_timestamp.as_ref().map(|t| t.0), k.namespace(), k.name_any()));
    print_list(
        global.output,
        global.no_headers,
        &keys,
        || table(&keys, Timestamp::now()),
        |k| format!("{APIKEY_KIND}/{}", k.name_any()),
        &format!("{scope} for products you may approve"),
    )
}

/// The reviewers' requests table (requests live in many namespaces: the NAMESPACE column is always there).
pub fn table(keys: &[APIKey], now: Timestamp) -> Table {
    let mut table = Table::new(vec!["NAMESPACE", "NAME", "PRODUCT", "PLAN", "USER", "PHASE", "AGE"]).with_wide(vec![
        "REVIEWED BY",
        "EXPIRES",
        "USE CASE",
    ]);
    for k in keys {
        let status = k.status.clone().unwrap_or_default();
        table.rows.push(vec![
            k.namespace().unwrap_or_default(),
            k.name_any(),
            format!("{}/{}", k.product_namespace(), k.spec.api_product_ref.name),
            k.spec.plan_tier.clone(),
            k.spec.requested_by.user_id.clone(),
            k.phase().to_string(),
            age(k.metadata.creation_timestamp.as_ref(), now),
            cell(status.reviewed_by.as_deref()),
            super::keys::expires(k),
            cell(k.spec.use_case.as_deref()),
        ]);
    }
    table
}

/// Whether the caller holds the `approve` verb on the product (what the admission policy checks).
pub async fn can_approve(session: &Session, namespace: &str, product: &str) -> Result<bool, Error> {
    session.may("approve", "apiproducts", namespace, Some(product)).await
}
