//! Error types shared across domains, and their mapping to the Lambda runtime's `Diagnostic`.

use lambda_runtime::Diagnostic;

/// A failure talking to an AWS API. Retryable and permanent failures are different variants so
/// that callers can decide between "try again" (503, SQS redelivery) and "give up and alert".
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// Throttling, timeouts, dispatch failures and 5xx answers: the same call may succeed later.
    #[error("{service} {operation} failed (retryable): {message}")]
    Retryable {
        /// The service (`sso-admin`, `sqs`, …).
        service: &'static str,
        /// The API operation.
        operation: &'static str,
        /// The error code and message.
        message: String,
    },
    /// The request itself was refused (missing resource, access denied, validation error).
    #[error("{service} {operation} failed: {message}")]
    Permanent {
        /// The service (`sso-admin`, `sqs`, …).
        service: &'static str,
        /// The API operation.
        operation: &'static str,
        /// The error code and message.
        message: String,
    },
}

impl AwsError {
    /// True for throttling, timeouts and 5xx answers.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AwsError::Retryable { .. })
    }

    /// Classifies an SDK error. The message is the SDK's error code and message, which never
    /// carries a secret value (Secrets Manager errors name the secret, not its contents).
    pub fn from_sdk<E, R>(
        service: &'static str,
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self::from_sdk_with(service, operation, err, &[])
    }

    /// As [`AwsError::from_sdk`], with service-specific error codes that are also retryable
    /// (e.g. sso-admin's `ConflictException`: another operation on the same permission set).
    pub fn from_sdk_with<E, R>(
        service: &'static str,
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
        also_retryable: &[&str],
    ) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        let retryable = match &err {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(e) => {
                let code = e.err().code().unwrap_or_default();
                also_retryable.contains(&code)
                    || code.contains("Throttl")
                    || code == "RequestLimitExceeded"
                    || code == "InternalFailure"
                    || code == "InternalServiceError"
                    || code == "ServiceUnavailable"
            }
            _ => false,
        };
        let message = match &err {
            SdkError::ServiceError(e) => format!(
                "{}: {}",
                e.err().code().unwrap_or("ServiceError"),
                e.err().message().unwrap_or("no message")
            ),
            other => aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
        };
        if retryable {
            AwsError::Retryable { service, operation, message }
        } else {
            AwsError::Permanent { service, operation, message }
        }
    }
}

/// Defines `fn $name(op, sdk_error) -> AwsError` for one AWS service, so each adapter classifies
/// its SDK errors in one line: `sdk_error_fn!(sso, "sso-admin", "ConflictException");`.
macro_rules! sdk_error_fn {
    ($name:ident, $service:literal $(, $retryable:literal)*) => {
        fn $name<E, R>(
            op: &'static str,
            e: aws_smithy_runtime_api::client::result::SdkError<E, R>,
        ) -> $crate::error::AwsError
        where
            E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
            R: std::fmt::Debug,
        {
            $crate::error::AwsError::from_sdk_with($service, op, e, &[$($retryable),*])
        }
    };
}
pub(crate) use sdk_error_fn;

impl From<AwsError> for Diagnostic {
    fn from(e: AwsError) -> Self {
        let error_type = if e.is_retryable() { "AwsRetryable" } else { "AwsPermanent" };
        Diagnostic { error_type: error_type.into(), error_message: e.to_string() }
    }
}
