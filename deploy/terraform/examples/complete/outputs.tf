output "function_name" {
  description = "Name of the forwarder function."
  value       = module.sawmill_forwarder.function_name
}

output "function_arn" {
  description = "ARN of the forwarder function."
  value       = module.sawmill_forwarder.function_arn
}

output "role_arn" {
  description = "ARN of the forwarder's execution role."
  value       = module.sawmill_forwarder.role_arn
}

output "failure_bucket_name" {
  description = "Bucket holding batches that could not be delivered, under failure_prefix."
  value       = module.sawmill_forwarder.failure_bucket_name
}

output "failure_prefix" {
  description = "Key prefix of undeliverable batches."
  value       = module.sawmill_forwarder.failure_prefix
}

output "s3_events_queue_arn" {
  description = "Queue S3 notifications go through."
  value       = module.sawmill_forwarder.s3_events_queue_arn
}

output "s3_events_dead_letter_queue_arn" {
  description = "Dead-letter queue of S3 notifications that kept failing."
  value       = module.sawmill_forwarder.s3_events_dead_letter_queue_arn
}

output "dead_letter_target_arn" {
  description = "Dead-letter queue of asynchronous invocations that kept failing."
  value       = module.sawmill_forwarder.dead_letter_target_arn
}

output "kms_key_arn" {
  description = "The KMS key encrypting the forwarder's environment, logs, queues and failure bucket."
  value       = aws_kms_key.sawmill.arn
}
