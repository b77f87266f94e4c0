//! `describe product`: everything a consumer needs to choose a plan and call the API.

use apiportal_core::{APIProduct, resources::httproute::HTTPRoute};
use kube::{Api, ResourceExt};

use crate::{
    cli::{GlobalArgs, OutputFormat},
    error::Error,
    output::{Describe, Shown, Table, age, print_object, print_shown},
    paste::{self, Command, Kind, Part, Value},
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
    print_shown(&render(&product, &hostnames, jiff::Timestamp::now()));
    Ok(())
}

/// Gets a product, with errors that say where to look.
pub async fn get_product(session: &Session, ns: &str, name: &str) -> Result<APIProduct, Error> {
    session.get_named("product", ns, name, "kubectl apiportal products -A").await
}

pub fn render(p: &APIProduct, hostnames: &[String], now: jiff::Timestamp) -> Shown {
    let mut out = Describe::default();
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    out.field("Name", &name);
    out.field("Namespace", &ns);
    out.field("Display Name", &p.spec.display_name);
    if let Some(d) = &p.spec.description {
        out.field("Description", d);
    }
    out.field("Version", p.spec.version.as_deref().unwrap_or("<none>"));
    if !p.spec.tags.is_empty() {
        out.field("Tags", p.spec.tags.join(", "));
    }
    out.field("Publish Status", format!("{:?}", p.spec.publish_status));
    let approval = match p.spec.approval_mode {
        apiportal_core::ApprovalMode::Automatic => "automatic (keys are issued at once)",
        apiportal_core::ApprovalMode::Manual => "manual (an owner reviews each request)",
    };
    out.field("Approval", approval);
    let route = if hostnames.is_empty() {
        p.spec.target_ref.name.clone()
    } else {
        format!("{} ({})", p.spec.target_ref.name, hostnames.join(", "))
    };
    out.field("Route", route);
    out.field("Age", age(p.metadata.creation_timestamp.as_ref(), now));

    out.section("Plans");
    if p.plans().is_empty() {
        out.line("<none discovered yet: the bridge reads them from the route's PlanPolicy>");
    } else {
        let mut table = Table::new(vec!["TIER", "LIMITS", "DESCRIPTION"]);
        for plan in p.plans() {
            table.rows.push(vec![
                plan.tier.clone(),
                plan.limits.summary(),
                plan.description.clone().unwrap_or_default(),
            ]);
        }
        out.table(&table);
    }

    let host = hostnames.first().map(String::as_str);
    let status = p.status.as_ref();
    let scheme = status.and_then(|s| s.discovered_auth_scheme.as_ref());
    out.section("Authentication");
    match scheme {
        Some(scheme) if scheme.api_key_rule().is_some() => {
            let (_, rule) = scheme.api_key_rule().unwrap();
            let tier = match p.plans().first() {
                Some(plan) => Value::new(&plan.tier, Kind::Word, "<tier>", "plan tier"),
                None => Value::unknown("<tier>"),
            };
            // The request names the key PRODUCT-TIER (request.rs): the tier is part of the key's name.
            let key_name = [Part::Value(Value::name(&name)), Part::Text("-"), Part::Value(tier)];
            let request =
                Command::apiportal("request").reference(&ns, &name).flag("--plan", tier).raw("--use-case '...' --wait");
            let reveal = Command::new("export API_KEY=$(kubectl apiportal key show").word(&key_name).raw("--reveal)");
            out.sub_field("Type", AUTH_WIDTH, "API key");
            out.commands("Get a key", Some(AUTH_WIDTH), &[request, reveal]);
            let call = paste::call_api(rule.credentials.as_ref(), host, "API_KEY");
            out.commands("Call it", Some(AUTH_WIDTH), &[call]);
        }
        Some(scheme) if scheme.jwt_issuer().is_some() => {
            let issuer = scheme.jwt_issuer().unwrap();
            let token_endpoint =
                status.and_then(|s| s.oidc_discovery.as_ref()).and_then(|o| o.token_endpoint.as_deref());
            out.sub_field("Type", OIDC_WIDTH, "OpenID Connect (JWT)");
            out.sub_field("Issuer", OIDC_WIDTH, issuer);
            match token_endpoint {
                Some(endpoint) => {
                    out.sub_field("Token endpoint", OIDC_WIDTH, endpoint);
                    let endpoint = Value::new(endpoint, Kind::Url, "<token-endpoint>", "token endpoint");
                    let token = Command::new(
                        "TOKEN=$(curl -s -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials",
                    )
                    .arg(endpoint)
                    .raw("| jq -r .access_token)");
                    out.commands("Get a token", Some(OIDC_WIDTH), &[token]);
                }
                None => {
                    out.sub_field(
                        "Token endpoint",
                        OIDC_WIDTH,
                        format!("<not discovered yet: see {issuer}/.well-known/openid-configuration>"),
                    );
                }
            }
            out.commands("Call it", Some(OIDC_WIDTH), &[paste::call_api(None, host, "TOKEN")]);
        }
        _ => {
            out.line("<not discovered yet: the bridge reads it from the route's AuthPolicy>");
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
        out.section("Documentation");
        for (label, value) in links {
            if let Some(v) = value {
                out.sub_field(label, LINK_WIDTH, v);
            }
        }
    }
    if let Some(c) = &p.spec.contact {
        out.section("Contact");
        for (label, value) in [("Team", &c.team), ("Email", &c.email), ("Slack", &c.slack), ("URL", &c.url)] {
            if let Some(v) = value {
                out.sub_field(label, LINK_WIDTH, v);
            }
        }
    }
    if !p.conditions().is_empty() {
        out.section("Conditions");
        let mut table = Table::new(vec!["TYPE", "STATUS", "REASON", "MESSAGE"]);
        for c in p.conditions() {
            table.rows.push(vec![c.type_.clone(), c.status.clone(), c.reason.clone(), c.message.clone()]);
        }
        out.table(&table);
    }
    out.finish()
}

/// Where values start in the Authentication section for API keys, and for OpenID Connect.
const AUTH_WIDTH: usize = 14;
const OIDC_WIDTH: usize = 17;
/// Where values start in the Documentation and Contact sections.
const LINK_WIDTH: usize = 12;
