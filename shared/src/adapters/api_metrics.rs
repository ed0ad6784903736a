//! Counts every AWS API attempt and every throttled one ([`Metric::ApiCalls`],
//! [`Metric::ApiThrottles`], by service), as an SDK interceptor on each client the adapters build.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::telemetry::metrics::{Metric, count};

/// The interceptor. Stateless: counts go to the running invocation's recorder.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiCallMetrics;

/// Error codes AWS services use for throttling, in the body (JSON `__type`, XML `<Code>`) or the
/// `x-amzn-errortype` / `x-amzn-query-error` headers.
const THROTTLE_MARKERS: [&str; 5] = [
    "Throttl",
    "TooManyRequests",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceeded",
];

/// True when an HTTP answer is a throttle: 429, or an error answer naming a throttling code.
pub fn is_throttle(status: u16, headers: &[&str], body: &[u8]) -> bool {
    if status == 429 {
        return true;
    }
    if status < 400 {
        return false;
    }
    let named = |text: &[u8]| {
        THROTTLE_MARKERS.iter().any(|m| memchr::memmem::find(text, m.as_bytes()).is_some())
    };
    headers.iter().any(|h| named(h.as_bytes())) || named(&body[..body.len().min(4096)])
}

impl Intercept for ApiCallMetrics {
    fn name(&self) -> &'static str {
        "ApiCallMetrics"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let service = cfg.load::<Metadata>().map(|m| m.service().to_owned()).unwrap_or_default();
        count(Metric::ApiCalls, &[&service], 1);
        if let Some(response) = context.response() {
            let headers: Vec<&str> = ["x-amzn-errortype", "x-amzn-query-error"]
                .iter()
                .filter_map(|h| response.headers().get(*h))
                .collect();
            let body = response.body().bytes().unwrap_or_default();
            if is_throttle(response.status().as_u16(), &headers, body) {
                count(Metric::ApiThrottles, &[&service], 1);
            }
        }
        Ok(())
    }
}

/// Builds an SDK client of crate `$krate` from an `SdkConfig` with [`ApiCallMetrics`] attached.
macro_rules! sdk_client {
    ($krate:ident, $sdk:expr) => {
        $krate::Client::from_conf(
            $krate::config::Builder::from($sdk)
                .interceptor($crate::adapters::ApiCallMetrics)
                .build(),
        )
    };
}
pub(crate) use sdk_client;

#[cfg(test)]
mod tests {
    use super::is_throttle;

    #[test]
    fn throttles_are_recognised_in_every_protocol_shape() {
        assert!(is_throttle(429, &[], b""));
        assert!(is_throttle(400, &[], br#"{"__type":"com.amazonaws.sso#ThrottlingException"}"#));
        assert!(is_throttle(400, &["ThrottlingException:"], b""));
        assert!(is_throttle(
            400,
            &[],
            b"<ErrorResponse><Error><Code>RequestThrottled</Code></Error></ErrorResponse>"
        ));
        assert!(is_throttle(503, &[], b"<Error><Code>SlowDown</Code></Error>"));
        assert!(!is_throttle(200, &[], b"Throttling in a successful body"));
        assert!(!is_throttle(400, &[], br#"{"__type":"ResourceNotFoundException"}"#));
        assert!(!is_throttle(500, &[], b""));
    }
}
