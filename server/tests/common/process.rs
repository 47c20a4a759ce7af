//! The real `casola` binary as a child process of a test, for faults that
//! need a whole process: `kill -9`, SIGTERM, and several servers on one
//! database.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The `STRIPE_*` variables a child must not inherit from the test's own
/// environment: a test sets the ones it wants.
const STRIPE_VARIABLES: [&str; 7] = [
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_PRICE_ID",
    "STRIPE_API_BASE",
    "STRIPE_JS_URL",
    "STRIPE_REQUEST_TIMEOUT_SECS",
];

/// A running `casola` process. Dropping it kills the process.
pub struct ServerProcess {
    /// Such as `http://127.0.0.1:41234`.
    pub base: String,
    pub port: u16,
    child: Child,
    log: tempfile::NamedTempFile,
}

/// Returns a port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

impl ServerProcess {
    /// Starts `casola` on a free port with `DATABASE_URL=database_url` and
    /// `env`, and waits until `/healthz` responds.
    pub async fn start(database_url: &str, env: &[(&str, String)]) -> ServerProcess {
        let mut server = ServerProcess::spawn(free_port(), database_url, env);
        server.wait_until_healthy().await;
        server
    }

    /// Starts `casola` on `port` without waiting for it, so that a test can
    /// start several at the same moment.
    pub fn spawn(port: u16, database_url: &str, env: &[(&str, String)]) -> ServerProcess {
        let log = tempfile::Builder::new().prefix("faults-casola-").tempfile().expect("create the server log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_casola"));
        for name in STRIPE_VARIABLES {
            command.env_remove(name);
        }
        command
            .env("DATABASE_URL", database_url)
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("CASOLA_ENV", "development")
            .env("RUST_LOG", "warn,casola=info,casola_server=info,app=info")
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            // The log goes to standard output, errors to standard error.
            .stdout(log.reopen().expect("open the server log file"))
            .stderr(log.reopen().expect("open the server log file"))
            .kill_on_drop(true);
        let child = command.spawn().expect("start the casola binary");
        ServerProcess { base: format!("http://127.0.0.1:{port}"), port, child, log }
    }

    /// Waits up to 30 s until `/healthz` responds 200, and fails at once
    /// when the process exits first.
    pub async fn wait_until_healthy(&mut self) {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            let response = client.get(self.url("/healthz")).send().await;
            if response.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("casola on port {} exited with {status} before serving; its log:\n{}", self.port, self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("casola on port {} did not respond within 30 s; its log:\n{}", self.port, self.log_text());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Returns what the process wrote to standard output and error so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends SIGKILL: the process ends at once, and no shutdown code runs.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("send SIGKILL to casola");
        self.child.wait().await.expect("wait for casola to exit");
    }

    /// Sends SIGTERM through the `kill` command, which requests a graceful
    /// shutdown.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("casola is still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits up to `limit` for the process to exit and returns its status.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait for casola to exit"),
            Err(_) => panic!("casola did not exit within {limit:?}; its log:\n{}", self.log_text()),
        }
    }
}

/// Returns the `STRIPE_*` variables that give a child process `settings`.
pub fn stripe_env(settings: &app::billing::stripe::StripeSettings) -> Vec<(&'static str, String)> {
    use secrecy::ExposeSecret;
    vec![
        ("STRIPE_SECRET_KEY", settings.secret_key.expose_secret().to_string()),
        ("STRIPE_PUBLISHABLE_KEY", settings.publishable_key.clone()),
        ("STRIPE_WEBHOOK_SECRET", settings.webhook_secret.expose_secret().to_string()),
        ("STRIPE_PRICE_ID", settings.price_id.clone()),
        ("STRIPE_API_BASE", settings.api_base.clone()),
        ("STRIPE_JS_URL", settings.js_url.clone()),
        ("STRIPE_REQUEST_TIMEOUT_SECS", settings.request_timeout.as_secs().to_string()),
    ]
}
