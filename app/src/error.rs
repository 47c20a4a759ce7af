//! The one error type that server functions return to clients.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};

/// A failure as the client sees it. Each variant's message is safe to show
/// to the user: internal causes are logged on the server and replaced by a
/// request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// 400: a parameter has a value the server does not accept.
    #[error("{0}")]
    BadRequest(String),
    /// 401: the request carries no valid session.
    #[error("You are signed out. Sign in again to continue.")]
    Unauthenticated,
    /// 403: the caller is signed in but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the named thing does not exist or is not visible to the caller.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 429: too many attempts in a short time.
    #[error("{0}")]
    TooManyRequests(String),
    /// 503: a dependency (the database, Stripe) is unavailable for now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: an unexpected failure, logged on the server under `request_id`.
    #[error("Something went wrong on our side (request {request_id}). Try again; if it keeps failing, contact support and quote the request id.")]
    Internal { request_id: String },
    /// No HTTP status: the client could not reach the server or read its
    /// response.
    #[error("Could not reach the server: {0}")]
    Transport(String),
}

impl AppError {
    /// Returns the HTTP status that carries this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal { .. } | AppError::Transport(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The arguments a client sent could not be read: the client's fault.
            ServerFnErrorErr::Args(message) => {
                AppError::BadRequest(format!("Invalid request arguments: {message}"))
            }
            ServerFnErrorErr::MissingArg(name) => {
                AppError::BadRequest(format!("Missing request argument `{name}`."))
            }
            // On the server, a body that cannot be decoded (such as form
            // data that is not UTF-8) is the client's fault too. In the
            // browser this variant means an unreadable response.
            ServerFnErrorErr::Deserialization(message) if cfg!(feature = "ssr") => {
                AppError::BadRequest(format!("Invalid request arguments: {message}"))
            }
            other => AppError::Transport(other.to_string()),
        }
    }
}
