//! A private localstripe per test, started through the project's launcher
//! on 127.0.0.1 with its state in a temporary folder.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running localstripe. Dropping it stops the process.
pub struct StandIn {
    /// API base with a trailing slash, such as `http://127.0.0.1:41234/`.
    pub base: String,
    pub port: u16,
    state_dir: tempfile::TempDir,
    child: Option<Child>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn launch(port: u16, state_dir: &std::path::Path) -> (Child, u16) {
    let root = repo_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `scripts/setup.sh test` (or `make test`), which installs localstripe",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("scripts/localstripe_launcher.py"))
        .args(["--port", &port.to_string(), "--exit-with-parent", "--state-dir"])
        .arg(state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the localstripe launcher");

    let stdout = child.stdout.take().expect("launcher stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("localstripe did not start within 30 s")
        .expect("read the launcher output")
        .expect("the launcher exited before listening");
    let port: u16 = line
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected launcher output: {line}"));
    (child, port)
}

impl StandIn {
    /// Starts a fresh localstripe on a free port.
    pub async fn start() -> StandIn {
        let state_dir = tempfile::tempdir().expect("create the stand-in state folder");
        let (child, port) = launch(0, state_dir.path()).await;
        StandIn { base: format!("http://127.0.0.1:{port}/"), port, state_dir, child: Some(child) }
    }

    /// Stops the process; its saved state stays for `restart`.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Waits until the process has exited by itself (after `exit_after`).
    pub async fn wait_exited(&mut self) {
        if let Some(mut child) = self.child.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
                .await
                .expect("localstripe did not exit within 10 s")
                .expect("wait for localstripe");
        }
    }

    /// Starts the process again on the same port with the saved state.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (child, _) = launch(self.port, self.state_dir.path()).await;
        self.child = Some(child);
    }

    /// Starts the process again on the same port with an empty store, as
    /// after a wiped stand-in.
    pub async fn restart_empty(&mut self) {
        self.stop().await;
        let state_file = self.state_dir.path().join("localstripe.pickle");
        if state_file.exists() {
            std::fs::remove_file(&state_file).expect("delete the stand-in's saved state");
        }
        let (child, _) = launch(self.port, self.state_dir.path()).await;
        self.child = Some(child);
    }

    /// Returns how many `/v1/` requests were made with `secret_key`.
    pub async fn request_count(&self, secret_key: &str) -> i64 {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}_config/request_count", self.base))
            .bearer_auth(secret_key)
            .send()
            .await
            .expect("ask localstripe for its request count")
            .json()
            .await
            .expect("read the request count");
        body["count"].as_i64().expect("count is a number")
    }

    /// Sends signed events for every object change to `url`.
    pub async fn register_webhook(&self, url: &str, secret: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}_config/webhooks/casola", self.base))
            .form(&[("url", url), ("secret", secret)])
            .send()
            .await
            .expect("register the webhook");
        assert!(response.status().is_success(), "webhook registration failed: {}", response.status());
    }

    /// Makes localstripe exit right after responding to the first `method`
    /// request whose path starts with `path_prefix`.
    pub async fn exit_after(&self, method: &str, path_prefix: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}_config/exit_after", self.base))
            .form(&[("method", method), ("path_prefix", path_prefix)])
            .send()
            .await
            .expect("configure exit_after");
        assert!(response.status().is_success());
    }

    /// Confirms a SetupIntent with a new card the way Stripe.js does: with
    /// the publishable key and client secret, from outside our server.
    pub async fn confirm_setup_intent(&self, setup_intent_id: &str, client_secret: &str, publishable_key: &str, number: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(format!("{}v1/setup_intents/{setup_intent_id}/confirm", self.base))
            .form(&[
                ("key", publishable_key),
                ("client_secret", client_secret),
                ("payment_method_data[type]", "card"),
                ("payment_method_data[card][number]", number),
                ("payment_method_data[card][exp_month]", "11"),
                ("payment_method_data[card][exp_year]", "2031"),
                ("payment_method_data[card][cvc]", "123"),
            ])
            .send()
            .await
            .expect("confirm the SetupIntent");
        assert!(response.status().is_success(), "confirming failed: {}", response.status());
        response.json().await.expect("read the SetupIntent")
    }

    /// Sends a GET with the secret key and returns the JSON body.
    pub async fn get(&self, secret_key: &str, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}v1/{path}", self.base))
            .bearer_auth(secret_key)
            .send()
            .await
            .expect("query localstripe")
            .json()
            .await
            .expect("read localstripe's answer")
    }
}
