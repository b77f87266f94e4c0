//! `products`: the published catalog.

use apiportal_core::APIProduct;
use jiff::Timestamp;
use kube::ResourceExt;

use super::{APIPRODUCT_KIND, list_scoped, scope_text};
use crate::{
    cli::{GlobalArgs, ProductsArgs},
    error::Error,
    output::{Table, age, cell, print_list},
    session::Session,
};

pub async fn list(session: &Session, global: &GlobalArgs, args: &ProductsArgs) -> Result<(), Error> {
    let mut products: Vec<APIProduct> = list_scoped(session, global.selector.as_deref(), "apiproducts").await?;
    products.retain(|p| args.include_drafts || p.is_published());
    products.sort_by_key(|p| (p.namespace(), p.name_any()));
    print_list(
        global.output,
        global.no_headers,
        &products,
        || table(&products, session.all_namespaces, Timestamp::now()),
        |p| format!("{APIPRODUCT_KIND}/{}", p.name_any()),
        &scope_text(session),
    )
}

/// The products table; `all_namespaces` adds the NAMESPACE column, as `kubectl get -A` does.
pub fn table(products: &[APIProduct], all_namespaces: bool, now: Timestamp) -> Table {
    let all = all_namespaces;
    let mut headers = vec!["NAME", "DISPLAY NAME", "VERSION", "APPROVAL", "PLANS", "AGE"];
    if all {
        headers.insert(0, "NAMESPACE");
    }
    let mut table = Table::new(headers).with_wide(vec!["ROUTE", "STATUS", "READY"]);
    for p in products {
        let plans: Vec<&str> = p.plans().iter().map(|plan| plan.tier.as_str()).collect();
        let ready = apiportal_core::resources::conditions::find(p.conditions(), "Ready").map(|c| c.status.clone());
        let mut row = vec![
            p.name_any(),
            p.spec.display_name.clone(),
            cell(p.spec.version.as_deref()),
            format!("{:?}", p.spec.approval_mode).to_lowercase(),
            if plans.is_empty() { "<pending>".to_owned() } else { plans.join(",") },
            age(p.metadata.creation_timestamp.as_ref(), now),
            p.spec.target_ref.name.clone(),
            format!("{:?}", p.spec.publish_status),
            cell(ready.as_deref()),
        ];
        if all {
            row.insert(0, p.namespace().unwrap_or_default());
        }
        table.rows.push(row);
    }
    table
}
