output "function_name" {
  description = "Name of the forwarder function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the forwarder function: the destination of subscription filters (`sawmill cloudwatch subscribe --destination-arn`) and S3 notifications."
  value       = aws_lambda_function.this.arn
}

output "role_name" {
  description = "Name of the function's execution role."
  value       = aws_iam_role.this.name
}

output "role_arn" {
  description = "ARN of the function's execution role (for KMS key policies and bucket policies that must let the forwarder in)."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "The function's own log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "failure_bucket_name" {
  description = "Bucket that receives undeliverable batches."
  value       = local.failure_bucket_name
}

output "failure_bucket_arn" {
  description = "ARN of the failure bucket."
  value       = local.failure_bucket_arn
}

output "failure_prefix" {
  description = "Key prefix of undeliverable batches in the failure bucket."
  value       = var.failure_prefix
}

output "log_group_name_prefixes" {
  description = "Log group name prefixes whose groups may invoke the function (for `sawmill cloudwatch subscribe --prefix`)."
  value       = var.log_group_name_prefixes
}

output "subscribed_log_groups" {
  description = "Log groups subscribed to the function by this module."
  value       = sort(keys(aws_cloudwatch_log_subscription_filter.this))
}

output "s3_events_queue_arn" {
  description = "ARN of the queue S3 notifications go through (null with s3_delivery = \"direct\" or no S3 sources). Point notifications here yourself when manage_s3_notifications is false."
  value       = local.s3_via_sqs ? aws_sqs_queue.s3_events[0].arn : null
}

output "s3_events_queue_url" {
  description = "URL of the S3 events queue (null when not created)."
  value       = local.s3_via_sqs ? aws_sqs_queue.s3_events[0].id : null
}

output "s3_events_dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue of S3 notifications that failed sqs_max_receive_count times (null when not created). Redrive it to the events queue once the cause is fixed."
  value       = local.s3_via_sqs ? aws_sqs_queue.s3_events_dlq[0].arn : null
}

output "dead_letter_target_arn" {
  description = "Dead-letter target of asynchronous invocations (CloudWatch Logs, direct S3), given or created; null when there is none."
  value       = local.dead_letter_target_arn
}

output "kinesis_event_source_mapping_uuids" {
  description = "UUIDs of the Kinesis event source mappings, by stream ARN."
  value       = { for arn, m in aws_lambda_event_source_mapping.kinesis : arn => m.uuid }
}
