//! AWS clients for the forwarder, from the standard SDK chain (region, credentials,
//! `AWS_ENDPOINT_URL`, …), on a rustls client.

/// The shared SDK configuration: the standard chain, 5 s to connect, 60 s an attempt.
pub async fn sdk_config() -> sawmill_aws::SdkConfig {
    sawmill_aws::sdk_config(&sawmill_aws::AwsSettings::default()).await
}

/// An S3 client; path-style addressing when configured (S3-compatible servers).
pub fn s3_client(shared: &sawmill_aws::SdkConfig, force_path_style: bool) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(shared)
        .force_path_style(force_path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
