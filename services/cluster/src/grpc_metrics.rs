//! Metrics for every gRPC server of a node (logic, config stream): requests
//! and time to the response headers, by method. A tower layer, so that a
//! service added later is measured without anyone remembering to.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// `tonic::transport::Server::builder().layer(GrpcMetricsLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

/// The method label: `/confab.v1.LogicService/Handle` → `LogicService/Handle`.
/// Any other path is folded into "other", so that a scanner cannot grow the
/// label set.
fn method_label(path: &str) -> &'static str {
    // Add new RPCs here (an unknown one is counted as "other").
    const KNOWN: [(&str, &str); 6] = [
        ("/confab.v1.LogicService/Login", "LogicService/Login"),
        (
            "/confab.v1.LogicService/SessionClosed",
            "LogicService/SessionClosed",
        ),
        ("/confab.v1.LogicService/Handle", "LogicService/Handle"),
        ("/confab.v1.LogicService/Info", "LogicService/Info"),
        ("/confab.v1.ConfigService/Watch", "ConfigService/Watch"),
        ("/confab.v1.NodeDelivery/Deliver", "NodeDelivery/Deliver"),
    ];
    KNOWN
        .iter()
        .find(|(p, _)| *p == path)
        .map_or("other", |(_, label)| label)
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            // A unary error travels in the headers (trailers-only response);
            // a stream's status comes later and is not counted here.
            let status = match &result {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or("ok", grpc_status_label),
                Err(_) => "transport_error",
            };
            metrics::counter!("confab_grpc_server_requests_total", "method" => method, "status" => status)
                .increment(1);
            metrics::histogram!("confab_grpc_server_seconds", "method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

fn grpc_status_label(code: &str) -> &'static str {
    match code {
        "0" => "ok",
        "1" => "cancelled",
        "2" => "unknown",
        "3" => "invalid_argument",
        "4" => "deadline_exceeded",
        "5" => "not_found",
        "7" => "permission_denied",
        "8" => "resource_exhausted",
        "12" => "unimplemented",
        "13" => "internal",
        "14" => "unavailable",
        "16" => "unauthenticated",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(
            method_label("/confab.v1.LogicService/Handle"),
            "LogicService/Handle"
        );
        assert_eq!(method_label("/evil/../x"), "other");
        assert_eq!(grpc_status_label("14"), "unavailable");
        assert_eq!(grpc_status_label("999"), "other");
    }
}
