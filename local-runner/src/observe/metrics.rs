//! Prometheus metrics over HTTP: `GET /metrics` in the OpenMetrics text format, for as long as the
//! run lasts. Off unless `--metrics-addr` is given.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::RunnerError;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Listens on `addr`; done before the run starts, so a taken address fails at once.
///
/// # Errors
/// [`RunnerError::MetricsAddr`] when the address cannot be listened on.
pub(crate) async fn listen(addr: SocketAddr) -> Result<TcpListener, RunnerError> {
    if let Some(warning) = exposure(addr) {
        tracing::warn!(%addr, "{warning}");
    }
    TcpListener::bind(addr).await.map_err(|source| RunnerError::MetricsAddr { addr, source })
}

/// What serving metrics on `addr` shows to others, when it shows them to anyone but this machine.
fn exposure(addr: SocketAddr) -> Option<String> {
    let ip = addr.ip();
    if ip.is_loopback() {
        return None;
    }
    let who = if ip.is_unspecified() { "every network interface" } else { "a network interface" };
    Some(format!(
        "metrics are served on {who}: anyone who can reach this machine there can read them (queue names, counts); \
         use 127.0.0.1:{} to keep them on this machine",
        addr.port()
    ))
}

/// Serves `registry` on `listener` until `stop` is cancelled.
pub(crate) async fn serve(listener: TcpListener, registry: Registry, stop: CancellationToken) {
    let registry = Arc::new(registry);
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let registry = Arc::clone(&registry);
            async move {
                let mut text = String::new();
                match prometheus_client::encoding::text::encode(&mut text, &registry) {
                    Ok(()) => ([(CONTENT_TYPE, OPENMETRICS)], text).into_response(),
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }),
    );
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(url = %format!("http://{addr}/metrics"), "serving metrics");
    }
    let served = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    if let Err(err) = served {
        tracing::warn!(%err, "the metrics server stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_every_interface_are_warned_about_and_loopback_is_not() {
        let all: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        assert!(
            exposure(all)
                .is_some_and(|w| w.contains("every network interface") && w.contains("127.0.0.1:9464"))
        );
        assert!(exposure("[::]:9464".parse().unwrap()).is_some());
        assert!(exposure("127.0.0.1:9464".parse().unwrap()).is_none());
        assert!(exposure("[::1]:9464".parse().unwrap()).is_none());
    }
}
