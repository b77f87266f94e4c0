//! `describe product`: everything a consumer needs to choose a plan and call the API.

use std::fmt::Write;

use apiportal_core::{
    APIProduct,
    resources::{authpolicy::Credentials, httproute::HTTPRoute},
};
use kube::{Api, ResourceExt};

use crate::{
    cli::{GlobalArgs, OutputFormat},
    error::Error,
    output::{Table, age, print_object},
    session::Session,
};

pub async fn product(session: &Session, global: &GlobalArgs, reference: &str) -> Result<(), Error> {
    let (ns, name) = session.qualify(reference)?;
    let product = get_product(session, &ns, &name).await?;
    if let Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) = global.output {
        return print_object(&product, format);
    }
    // The bridge records the route's hostnames, since consumers usually may not read routes; before it has,
    // the route itself, where the caller may read it.
    let hostnames = if product.hostnames().is_empty() {
        Api::<HTTPRoute>::namespaced(session.client.clone(), &ns)
            .get_opt(&product.spec.target_ref.name)
            .await
            .ok()
            .flatten()
            .map(|r| r.spec.hostnames)
            .unwrap_or_default()
    } else {
        product.hostnames().to_vec()
    };
    print!("{}", render(&product, &hostnames, jiff::Timestamp::now()));
    Ok(())
}

/// Gets a product, with errors that say where to look.
pub async fn get_product(session: &Session, ns: &str, name: &str) -> Result<APIProduct, Error> {
    session.get_named("product", ns, name, "kubectl apiportal products -A").await
}

fn field(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{:<16}{value}", format!("{label}:"));
}

pub fn render(p: &APIProduct, hostnames: &[String], now: jiff::Timestamp) -> String {
    let mut out = String::new();
    let ns = p.namespace().unwrap_or_default();
    field(&mut out, "Name", p.name_any());
    field(&mut out, "Namespace", &ns);
    field(&mut out, "Display Name", &p.spec.display_name);
    if let Some(d) = &p.spec.description {
        field(&mut out, "Description", d);
    }
    field(&mut out, "Version", p.spec.version.as_deref().unwrap_or("<none>"));
    if !p.spec.tags.is_empty() {
        field(&mut out, "Tags", p.spec.tags.join(", "));
    }
    field(&mut out, "Publish Status", format!("{:?}", p.spec.publish_status));
    let approval = match p.spec.approval_mode {
        apiportal_core::ApprovalMode::Automatic => "automatic (keys are issued at once)",
        apiportal_core::ApprovalMode::Manual => "manual (an owner reviews each request)",
    };
    field(&mut out, "Approval", approval);
    let route = if hostnames.is_empty() {
        p.spec.target_ref.name.clone()
    } else {
        format!("{} ({})", p.spec.target_ref.name, hostnames.join(", "))
    };
    field(&mut out, "Route", route);
    field(&mut out, "Age", age(p.metadata.creation_timestamp.as_ref(), now));

    let _ = writeln!(out, "\nPlans:");
    if p.plans().is_empty() {
        let _ = writeln!(out, "  <none discovered yet: the bridge reads them from the route's PlanPolicy>");
    } else {
        let mut table = Table::new(vec!["TIER", "LIMITS", "DESCRIPTION"]);
        for plan in p.plans() {
            table.rows.push(vec![
                plan.tier.clone(),
                plan.limits.summary(),
                plan.description.clone().unwrap_or_default(),
            ]);
        }
        for line in table.render(false, false).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }

    let url = format!("https://{}/", hostnames.first().map(String::as_str).unwrap_or("<api-hostname>"));
    let status = p.status.as_ref();
    let scheme = status.and_then(|s| s.discovered_auth_scheme.as_ref());
    let _ = writeln!(out, "\nAuthentication:");
    match scheme {
        Some(scheme) if scheme.api_key_rule().is_some() => {
            let (_, rule) = scheme.api_key_rule().unwrap();
            let location = Credentials::describe(rule.credentials.as_ref(), "$API_KEY");
            let first_tier = p.plans().first().map(|t| t.tier.as_str()).unwrap_or("TIER");
            let _ = writeln!(out, "  Type:         API key");
            let _ = writeln!(
                out,
                "  Get a key:    kubectl apiportal request {ns}/{} --plan {first_tier} --use-case '...' --wait",
                p.name_any()
            );
            let _ = writeln!(
                out,
                "                export API_KEY=$(kubectl apiportal key show {}-{first_tier} --reveal)",
                p.name_any()
            );
            let _ = writeln!(out, "  Call it:      {}", location.curl(&url));
        }
        Some(scheme) if scheme.jwt_issuer().is_some() => {
            let issuer = scheme.jwt_issuer().unwrap();
            let token_endpoint = status.and_then(|s| s.oidc_discovery.as_ref()).and_then(|o| o.token_endpoint.clone());
            let _ = writeln!(out, "  Type:            OpenID Connect (JWT)");
            let _ = writeln!(out, "  Issuer:          {issuer}");
            match token_endpoint {
                Some(endpoint) => {
                    let _ = writeln!(out, "  Token endpoint:  {endpoint}");
                    let _ = writeln!(
                        out,
                        "  Get a token:     TOKEN=$(curl -s -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials {endpoint} | jq -r .access_token)"
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  Token endpoint:  <not discovered yet: see {issuer}/.well-known/openid-configuration>"
                    );
                }
            }
            let _ = writeln!(out, "  Call it:         curl -H \"Authorization: Bearer $TOKEN\" {url}");
        }
        _ => {
            let _ = writeln!(out, "  <not discovered yet: the bridge reads it from the route's AuthPolicy>");
        }
    }

    let docs = p.spec.documentation.clone().unwrap_or_default();
    let links = [
        ("Docs", docs.docs_url),
        ("OpenAPI", docs.openapi_spec_url),
        ("Swagger UI", docs.swagger_ui),
        ("Repository", docs.git_repository),
        ("TechDocs", docs.techdocs_ref),
    ];
    if links.iter().any(|(_, v)| v.is_some()) {
        let _ = writeln!(out, "\nDocumentation:");
        for (label, value) in links {
            if let Some(v) = value {
                let _ = writeln!(out, "  {:<12}{v}", format!("{label}:"));
            }
        }
    }
    if let Some(c) = &p.spec.contact {
        let _ = writeln!(out, "\nContact:");
        for (label, value) in [("Team", &c.team), ("Email", &c.email), ("Slack", &c.slack), ("URL", &c.url)] {
            if let Some(v) = value {
                let _ = writeln!(out, "  {:<12}{v}", format!("{label}:"));
            }
        }
    }
    if !p.conditions().is_empty() {
        let _ = writeln!(out, "\nConditions:");
        let mut table = Table::new(vec!["TYPE", "STATUS", "REASON", "MESSAGE"]);
        for c in p.conditions() {
            table.rows.push(vec![c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone()]);
        }
        for line in table.render(false, false).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}
