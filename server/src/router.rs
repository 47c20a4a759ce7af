//! The router, shared by `main` and the integration tests.

use std::sync::OnceLock;
use std::time::Duration;

use app::error::AppError;
use app::state::AppState;
use app::{shell, App};
use axum::body::{to_bytes, Body};
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};

use crate::spa::{self, SpaOrigin};
use crate::{database, export, ingest, security, web_auth, webhooks};

/// Router state: the app's and the Leptos options the page routes need.
#[derive(Clone)]
pub struct ServerState {
    pub app: AppState,
    pub leptos: LeptosOptions,
}

impl FromRef<ServerState> for AppState {
    fn from_ref(state: &ServerState) -> AppState {
        state.app.clone()
    }
}

impl FromRef<ServerState> for LeptosOptions {
    fn from_ref(state: &ServerState) -> LeptosOptions {
        state.leptos.clone()
    }
}

/// Builds every route: pages, server functions, form posts, the CSV export,
/// the ingestion API, Stripe webhooks and health checks, behind the session,
/// cross-site and CSRF guards, with security headers on every response. No other origin may call the
/// server functions.
pub fn build_router(app_state: AppState, leptos: LeptosOptions) -> Router {
    build_router_with_spa_origin(app_state, leptos, None)
}

/// Like `build_router`, and with `spa_origin` set, lets pages from that
/// origin (the static single-page app) call the server functions with
/// cookies.
pub fn build_router_with_spa_origin(app_state: AppState, leptos: LeptosOptions, spa_origin: Option<SpaOrigin>) -> Router {
    let state = ServerState { app: app_state.clone(), leptos: leptos.clone() };
    let routes = page_routes();
    let page_state = app_state.clone();

    Router::new()
        .route("/login", post(web_auth::login))
        .route("/logout", post(web_auth::logout))
        .route("/orgs/switch", post(web_auth::switch_org))
        .route("/usage/export.csv", get(export::usage_csv))
        .route("/api/v1/jobs", post(ingest::post_jobs))
        .route("/webhooks/stripe", post(webhooks::stripe_webhook))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(page_state.clone()),
            {
                let leptos = leptos.clone();
                move || shell(leptos.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<ServerState, _>(shell))
        .layer(middleware::map_response(server_fn_error_status))
        .layer(middleware::from_fn_with_state(app_state.clone(), web_auth::require_session_for_pages))
        .layer(middleware::from_fn_with_state(app_state.clone(), security::require_csrf_token))
        .layer(middleware::from_fn_with_state(spa_origin.clone(), web_auth::reject_cross_site))
        // Outside the CSRF and cross-site guards, so that the static app can
        // read their rejections and its preflight requests get a response.
        .layer(middleware::from_fn_with_state(spa_origin, spa::spa_cors))
        .layer(middleware::from_fn(security::set_security_headers))
        // Outermost, so that it also gets the 503 pages of the layers above.
        .layer(middleware::map_response(add_retry_after))
        .with_state(state)
}

/// Returns the page routes, generated once per process. While
/// `generate_route_list` runs, `leptos_server` suppresses every resource
/// load in the process, so a page that another router renders meanwhile
/// never responds.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// How long `/readyz` waits for the database. Shorter than the pool's
/// acquire timeout, so that a probe gets its 503 before it gives up.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// The `Retry-After` of every 503 response, in seconds: about how long a
/// PostgreSQL restart or a busy SQLite file keeps the database away.
pub const RETRY_AFTER_SECS: u64 = 5;

/// `GET /readyz`: 200 when the database responds and has every migration
/// applied, else 503.
async fn readiness(State(state): State<AppState>) -> Response {
    match database::check_ready(&state.pool, READINESS_TIMEOUT).await {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {error}")).into_response()
        }
    }
}

/// Adds `Retry-After` to a 503 response that has none, so that clients and
/// load balancers know the failure is temporary and when to try again.
async fn add_retry_after(mut response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE && !response.headers().contains_key(header::RETRY_AFTER) {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

/// Gives a server function's error response the status its `AppError`
/// names: the server function machinery sends every error as 500. A layer,
/// because `leptos_routes_with_context` registers each server function's
/// own route.
async fn server_fn_error_status(response: Response) -> Response {
    if !response.headers().contains_key("serverfnerror") {
        return response;
    }

    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = error.status();
    }
    Response::from_parts(parts, Body::from(bytes))
}
