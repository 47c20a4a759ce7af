//! `casola`: serves the app, or runs an operator command.

use std::future::IntoFuture;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use app::auth::Role;
use app::billing::stripe::Stripe;
use app::state::AppState;
use app::usage::cache::SummaryCache;
use casola_server::database::{self, Backend};
use casola_server::settings::{self, Settings};
use app::api_keys::ssr as api_keys;
use casola_server::{accounts, billing_demo, jobs, router, seed, telemetry};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use sqlx::AnyPool;

#[derive(Parser)]
#[command(name = "casola", about = "Casola Billing & Usage server. With no command, serves the app.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app on LEPTOS_SITE_ADDR (default 127.0.0.1:3000).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Create the demo organization, its three sign-ins and the Philly jobs,
    /// when the database has no organization yet.
    SeedDemo,
    /// Give the demo organization a Stripe customer with two cards and an
    /// active subscription, unless Stripe already has them. Only against a
    /// stand-in (STRIPE_API_BASE other than Stripe's).
    SeedBillingDemo,
    /// Create a user. The password is read from the first line of standard
    /// input, so it never appears in the process list.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Create an organization.
    CreateOrg {
        /// 2 to 40 lowercase letters, digits or dashes.
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        /// IANA time zone, such as Europe/Berlin.
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// Create an API key for the ingestion API and print it. The key is
    /// shown only this once; only its hash is stored.
    CreateApiKey {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// A label that distinguishes the organization's keys.
        #[arg(long)]
        name: String,
    },
    /// Revoke an API key: requests with it are rejected from then on.
    RevokeApiKey {
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
    },
    /// Import a job trace in the Philly CSV format (u_id, user, gpu_num,
    /// interval, run_time, new_status) into an organization, shifted so the
    /// last job was submitted five minutes ago.
    ImportTrace {
        /// Path of the CSV file.
        file: std::path::PathBuf,
        /// The organization's slug.
        #[arg(long)]
        org: String,
    },
    /// Add a user to an organization, or change their role there.
    AddMember {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// owner, admin or member.
        #[arg(long)]
        role: String,
    },
}

fn main() -> ExitCode {
    settings::default_leptos_env();
    let cli = Cli::parse();
    telemetry::init();

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let pool = open_database(&settings).await?;

    match command {
        Command::Serve => serve(settings, pool).await,
        Command::Migrate => {
            println!("Migrations applied.");
            Ok(())
        }
        Command::SeedDemo => {
            match seed::seed_demo(&pool, chrono::Utc::now()).await? {
                seed::SeedOutcome::Seeded { jobs } => {
                    println!("Seeded the demo organization with {jobs} jobs.");
                }
                seed::SeedOutcome::SkippedNotEmpty => {
                    println!("The database already has organizations; the demo was not seeded.");
                }
            }
            Ok(())
        }
        Command::SeedBillingDemo => {
            let stripe_settings = settings
                .stripe
                .clone()
                .context("STRIPE_SECRET_KEY is not set, so there is no Stripe to seed")?;
            let stripe = Stripe::new(stripe_settings).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", billing_demo::seed_billing_demo(&pool, &stripe).await?);
            Ok(())
        }
        Command::CreateUser { email, name } => {
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password).context("reading the password from standard input")?;
            let id = accounts::create_user(&pool, &email, &name, password.trim_end_matches(['\r', '\n'])).await?;
            println!("Created user {email} (id {id}).");
            Ok(())
        }
        Command::CreateOrg { slug, name, timezone } => {
            let id = accounts::create_org(&pool, &slug, &name, &timezone).await?;
            println!("Created organization {slug} (id {id}).");
            Ok(())
        }
        Command::CreateApiKey { org, name } => {
            let org_id = api_keys::org_id_of(&pool, &org).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let key = api_keys::create_key(&pool, org_id, &name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{key}");
            eprintln!("Created API key \"{name}\" for {org}. Store it now: it is not shown again.");
            Ok(())
        }
        Command::RevokeApiKey { org, name } => {
            let org_id = api_keys::org_id_of(&pool, &org).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            api_keys::revoke_key(&pool, org_id, &name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Revoked API key \"{name}\" of {org}.");
            Ok(())
        }
        Command::ImportTrace { file, org } => import_trace(&pool, &file, &org).await,
        Command::AddMember { org, email, role } => {
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("{e}"))?;
            accounts::add_member(&pool, &org, &email, role).await?;
            println!("{email} is now {} of {org}.", role.as_str());
            Ok(())
        }
    }
}

/// Imports a trace through `jobs::upsert_jobs`, the ingestion API's write
/// path, in batches of 1,000 with a progress bar.
async fn import_trace(pool: &AnyPool, file: &std::path::Path, org: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let records = seed::philly_records(&text, chrono::Utc::now())?;
    let org_id: i64 = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
        .bind(org)
        .fetch_optional(pool)
        .await?
        .with_context(|| format!("no organization has the slug \"{org}\""))?;

    let progress = indicatif::ProgressBar::new(records.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} jobs ({per_sec}, {eta} left)")
            .context("building the progress bar")?,
    );
    for batch in records.chunks(1_000) {
        jobs::upsert_jobs(pool, org_id, batch).await.context("storing a batch")?;
        progress.inc(batch.len() as u64);
    }
    progress.finish();
    println!("Imported {} jobs into {org}.", records.len());
    Ok(())
}

async fn open_database(settings: &Settings) -> anyhow::Result<AnyPool> {
    let backend = Backend::of_url(settings.database_url.expose_secret());
    let pool = database::connect(&settings.database_url).await?;
    database::migrate(&pool, backend).await?;
    Ok(pool)
}

async fn serve(settings: Settings, pool: AnyPool) -> anyhow::Result<()> {
    let address = settings.leptos.site_addr;
    let stripe = match settings.stripe.clone() {
        Some(stripe_settings) => {
            tracing::info!(
                api_base = %stripe_settings.api_base,
                stand_in = stripe_settings.is_stand_in(),
                "billing talks to Stripe"
            );
            Some(Stripe::new(stripe_settings).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        None => {
            tracing::warn!("STRIPE_SECRET_KEY is not set: the billing page will respond with 503");
            None
        }
    };
    tracing::info!(max_age_ms = settings.usage_cache_max_age.as_millis() as u64, "usage summaries are cached");
    let state = AppState {
        pool,
        secure_cookies: !settings.development,
        stripe,
        usage_cache: Arc::new(SummaryCache::new(settings.usage_cache_max_age)),
    };
    if let Some(origin) = &settings.spa_origin {
        tracing::info!(?origin, "server functions accept calls from the static app's origin");
    }
    let app = router::build_router_with_spa_origin(state, settings.leptos.clone(), settings.spa_origin.clone());

    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} (is another server running there?)"))?;
    tracing::info!(%address, development = settings.development, "serving");
    let shutdown_started = std::sync::Arc::new(tokio::sync::Notify::new());
    let signal = {
        let shutdown_started = shutdown_started.clone();
        async move {
            shutdown_signal().await;
            shutdown_started.notify_one();
        }
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(signal).into_future();
    let timeout = settings.shutdown_timeout;
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        () = async { shutdown_started.notified().await; tokio::time::sleep(timeout).await } => {
            tracing::warn!(?timeout, "requests still running at the shutdown timeout; exiting without them");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. In-flight requests then finish before the
/// server exits, for up to `CASOLA_SHUTDOWN_TIMEOUT_SECS`.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received, draining requests");
}
