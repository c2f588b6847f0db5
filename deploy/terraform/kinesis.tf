# Kinesis streams carrying CloudWatch Logs subscription data → forwarder. Failed records are
# reported per item (ReportBatchItemFailures), failing batches are halved to isolate the bad
# record, and batches still failing after their retries are reported to the on-failure
# destination rather than blocking the shard.

resource "aws_lambda_event_source_mapping" "kinesis" {
  for_each = toset(var.kinesis_stream_arns)

  event_source_arn                   = each.value
  function_name                      = aws_lambda_function.this.arn
  starting_position                  = var.kinesis_starting_position
  batch_size                         = var.kinesis_batch_size
  maximum_batching_window_in_seconds = var.kinesis_batching_window_seconds
  parallelization_factor             = var.kinesis_parallelization_factor
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.kinesis_maximum_retry_attempts
  maximum_record_age_in_seconds      = var.kinesis_maximum_record_age_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  dynamic "destination_config" {
    for_each = local.kinesis_on_failure_arn == null ? [] : [local.kinesis_on_failure_arn]
    content {
      on_failure {
        destination_arn = destination_config.value
      }
    }
  }

  depends_on = [aws_iam_role_policy.this]
}
