//! Logging through `tracing`. In Lambda the runtime's default subscriber honours
//! `AWS_LAMBDA_LOG_FORMAT=JSON` and `AWS_LAMBDA_LOG_LEVEL`; locally it prints text.

/// Installs the Lambda runtime's default subscriber. Call once, first thing in `main`.
pub fn init_lambda() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// A subscriber for the CLI: human-readable, to stderr, filtered by `RUST_LOG` (default `warn`).
pub fn init_cli() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub mod metrics;
