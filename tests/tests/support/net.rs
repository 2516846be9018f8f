//! The network between the runner and its endpoints: a TCP proxy that an outage closes, and a
//! plain HTTP GET.

/// A TCP proxy on 127.0.0.1: `port` forwards to `target`. Dropping it (or `close`) stops
/// accepting and drops every connection it carries, pooled keep-alive ones included: an outage
/// in which existing connections break and new ones are refused.
pub struct Proxy {
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn open(port: u16, target: u16) -> Self {
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the proxy port is free");
        let task = tokio::spawn(async move {
            // Owned by this task: aborting it drops every connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { task }
    }

    pub async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A plain HTTP/1.1 GET of `path` on `addr`: the status code and the body, or `None` when
/// nothing answers there.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}
