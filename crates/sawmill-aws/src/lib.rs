//! The one way sawmill builds its AWS SDK configuration (S3 for the archive and the forwarder,
//! SNS for alert notifications, CloudWatch Logs for `sawmill cloudwatch`).
//!
//! Credentials, region and endpoints come from the standard SDK chain (`AWS_REGION`,
//! `AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, profiles, instance and task
//! roles, …); a region given in sawmill's own configuration wins over the chain. Requests go
//! over a rustls (ring) HTTPS client, with a connect timeout and a per-attempt timeout so that
//! an unreachable endpoint fails in bounded time, and the SDK's standard retry mode. A
//! service's own endpoint override (`endpoint = …` in the config) is applied by the caller on
//! that service's config builder.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

pub use aws_config::SdkConfig;

/// What differs between sawmill's AWS clients.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// Overrides the region of the SDK chain.
    pub region: Option<String>,
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest time one attempt of an operation may take.
    pub attempt_timeout: Duration,
    /// Attempts of one operation by the SDK's standard retry mode (1: no retry).
    pub max_attempts: u32,
}

impl Default for AwsSettings {
    /// The SDK chain's region, 5 s to connect, 60 s an attempt, 3 attempts.
    fn default() -> Self {
        AwsSettings {
            region: None,
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(60),
            max_attempts: 3,
        }
    }
}

/// Loads the shared SDK configuration from the standard chain with `settings` applied.
pub async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(settings.connect_timeout.min(settings.attempt_timeout))
                .operation_attempt_timeout(settings.attempt_timeout)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(settings.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(200)),
        );
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_configured_region_wins_and_timeouts_are_set() {
        let settings = AwsSettings {
            region: Some("eu-west-3".into()),
            connect_timeout: Duration::from_secs(9),
            attempt_timeout: Duration::from_secs(4),
            max_attempts: 2,
        };
        let config = sdk_config(&settings).await;
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-west-3"));
        let timeouts = config.timeout_config().expect("timeouts are set");
        // the connect timeout never exceeds the attempt's
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(4)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(4))
        );
        let retry = config.retry_config().expect("retries are set");
        assert_eq!(retry.max_attempts(), 2);
    }
}
