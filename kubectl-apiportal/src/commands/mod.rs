//! One module per command; each takes the parsed arguments and a session, computes, and hands printing to
//! `output`.

mod change_plan;
mod decide;
mod describe;
mod doctor;
mod install;
mod keys;
mod product;
mod products;
#[cfg(test)]
mod render_tests;
mod request;
mod requests;
mod review;
mod rotate;
mod routes;
mod uninstall;

use kube::{Api, Resource, api::ListParams};
use serde::de::DeserializeOwned;

use crate::{
    cli::{Cli, Command, DescribeTarget, DryRun, GlobalArgs, KeyCommand, ProductCommand},
    error::Error,
    output::say,
    session::Session,
};

pub async fn run(cli: Cli) -> Result<(), Error> {
    let global = cli.global;
    match cli.command {
        Command::Version => return version(&global).await,
        Command::Completion(args) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(args.shell, &mut command, "kubectl-apiportal", &mut std::io::stdout());
            return Ok(());
        }
        Command::Install(args) if args.dry_run.dry_run == DryRun::Client => {
            return install::print_manifests(&global, &args);
        }
        _ => {}
    }
    let session = Session::connect(&global).await?;
    // Install, uninstall, doctor and routes work (and explain themselves) without the CRDs.
    let needs_crds =
        !matches!(cli.command, Command::Install(_) | Command::Uninstall(_) | Command::Doctor | Command::Routes(_));
    match dispatch(cli.command, &session, &global).await {
        Err(e) if needs_crds && e.may_mean_not_installed() && !session.crds_installed().await => {
            Err(Error::not_installed())
        }
        result => result,
    }
}

async fn dispatch(command: Command, session: &Session, global: &GlobalArgs) -> Result<(), Error> {
    match command {
        Command::Products(args) => products::list(session, global, &args).await,
        Command::Describe(args) => match args.what {
            DescribeTarget::Product { name } => describe::product(session, global, &name).await,
            DescribeTarget::Key { name } => keys::show(session, global, &name, false).await,
        },
        Command::Request(args) => request::run(session, global, &args).await,
        Command::Keys(args) => keys::list(session, global, &args).await,
        Command::Key(KeyCommand::Show { name, reveal }) => keys::show(session, global, &name, reveal).await,
        Command::Key(KeyCommand::Rotate(args)) => rotate::rotate(session, &args).await,
        Command::Key(KeyCommand::ChangePlan(args)) => change_plan::run(session, &args).await,
        Command::Revoke(args) => keys::revoke(session, &args).await,
        Command::Product(ProductCommand::Create(args)) => product::create(session, global, &args).await,
        Command::Product(ProductCommand::Publish { name, dry_run }) => {
            product::set_published(session, &name, true, dry_run.dry_run).await
        }
        Command::Product(ProductCommand::Unpublish { name, dry_run }) => {
            product::set_published(session, &name, false, dry_run.dry_run).await
        }
        Command::Requests(args) => requests::list(session, global, &args).await,
        Command::Approve(args) => decide::approve(session, &args).await,
        Command::Reject(args) => decide::reject(session, &args).await,
        Command::Suspend(args) => decide::suspend(session, &args).await,
        Command::Resume(args) => decide::resume(session, &args).await,
        Command::Install(args) => install::install(session, global, &args).await,
        Command::Uninstall(args) => uninstall::uninstall(session, &args).await,
        Command::Routes(args) => routes::list(session, global, &args).await,
        Command::Expose(args) => routes::expose(session, global, &args).await,
        Command::Doctor => doctor::run(session, global.namespace.as_deref()).await,
        Command::Version | Command::Completion(_) => unreachable!("handled before connecting"),
    }
}

async fn version(global: &GlobalArgs) -> Result<(), Error> {
    say!("Client Version: v{}", env!("CARGO_PKG_VERSION"));
    // The server's version is a courtesy: the plugin's own version prints even with no cluster.
    if let Ok(session) = Session::connect(global).await
        && let Ok(info) = session.client.apiserver_version().await
    {
        say!("Server Version: {}", info.git_version);
    }
    Ok(())
}

/// The API for `K` in the session's scope: every namespace with `-A`, else the session namespace.
pub fn scoped_api<K>(session: &Session) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    if session.all_namespaces {
        Api::all(session.client.clone())
    } else {
        Api::namespaced(session.client.clone(), &session.namespace)
    }
}

/// Lists `K` in the session's scope, with the label selector, turning errors into actionable ones.
pub async fn list_scoped<K>(session: &Session, selector: Option<&str>, what: &str) -> Result<Vec<K>, Error>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let mut params = ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let scope = scope_text(session);
    match scoped_api::<K>(session).list(&params).await {
        Ok(list) => Ok(list.items),
        Err(e) => Err(session.explain(e, &format!("list {what}{scope}"))),
    }
}

/// ` in namespace "x"` or ` in any namespace`.
pub fn scope_text(session: &Session) -> String {
    if session.all_namespaces {
        " in any namespace".to_owned()
    } else {
        format!(" in namespace {:?}", session.namespace)
    }
}

/// `kubectl`'s past-tense line for a mutation, e.g. `apikey.devportal.kuadrant.io/toys-gold created (server dry run)`.
pub fn report(kind: &str, name: &str, verb: &str, dry_run: DryRun) {
    let suffix = match dry_run {
        DryRun::None => "",
        DryRun::Client => " (dry run)",
        DryRun::Server => " (server dry run)",
    };
    say!("{kind}/{name} {verb}{suffix}");
}

pub const APIPRODUCT_KIND: &str = "apiproduct.devportal.kuadrant.io";
pub const APIKEY_KIND: &str = "apikey.devportal.kuadrant.io";
