//! A TCP proxy on 127.0.0.1 that can hold back what clients send, so that
//! the real stand-in behind it responds late, as a slow Stripe does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running proxy. Dropping it closes the listener and every connection.
pub struct DelayProxy {
    /// The proxy's URL with a trailing slash, such as `http://127.0.0.1:41234/`.
    pub base: String,
    delay_ms: Arc<AtomicU64>,
    accept_task: JoinHandle<()>,
}

impl DelayProxy {
    /// Starts a proxy on a free port that forwards to `127.0.0.1:upstream_port`.
    pub async fn start(upstream_port: u16) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy port");
        let port = listener.local_addr().expect("read the proxy address").port();
        let delay_ms = Arc::new(AtomicU64::new(0));

        let shared_delay = delay_ms.clone();
        let accept_task = tokio::spawn(async move {
            // Dropping the set when this task is aborted aborts every
            // connection's task too.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(forward(client, upstream_port, shared_delay.clone()));
            }
        });
        DelayProxy { base: format!("http://127.0.0.1:{port}/"), delay_ms, accept_task }
    }

    /// Holds every chunk that a client sends from now on for `delay` before
    /// it goes on, on new and open connections alike. Zero turns it off.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn forward(client: TcpStream, upstream_port: u16, delay_ms: Arc<AtomicU64>) {
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();

    let requests = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let delay = delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if upstream_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        let _ = upstream_write.shutdown().await;
    };
    let responses = async move {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(requests, responses);
}
