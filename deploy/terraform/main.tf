# The sawmill forwarder: a Lambda function that ships CloudWatch Logs subscriptions, S3 log
# files, Kinesis records and SQS batches to a sawmill server. The resources are split by
# concern: lambda.tf (function, log group, asynchronous failure handling), iam.tf (its role),
# cloudwatch_logs.tf, s3.tf and kinesis.tf (its event sources), failure_bucket.tf.

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  # The function's own log group; created here so that its retention and encryption are managed.
  log_group_name = "/aws/lambda/${var.function_name}"

  # Failure bucket: the one created here, or the existing one named (a precondition of the
  # function explains a missing name; the placeholder keeps the expressions valid until then).
  failure_bucket_name = var.create_failure_bucket ? aws_s3_bucket.failures[0].id : coalesce(var.failure_bucket_name, "-")
  failure_bucket_arn  = "arn:${local.partition}:s3:::${local.failure_bucket_name}"

  # S3 sources, one entry per (bucket, prefix, suffix), grouped per bucket for notifications.
  s3_sources = [
    for s in var.s3_sources : {
      bucket = s.bucket
      prefix = s.prefix == null ? "" : s.prefix
      suffix = s.suffix == null ? "" : s.suffix
    }
  ]
  s3_buckets        = toset([for s in local.s3_sources : s.bucket])
  s3_bucket_arns    = sort([for b in local.s3_buckets : "arn:${local.partition}:s3:::${b}"])
  s3_object_arns    = sort(distinct([for s in local.s3_sources : "arn:${local.partition}:s3:::${s.bucket}/${s.prefix}*"]))
  s3_sources_by_key = { for b in local.s3_buckets : b => [for s in local.s3_sources : s if s.bucket == b] }
  s3_via_sqs        = length(local.s3_sources) > 0 && var.s3_delivery == "sqs"
  s3_direct         = length(local.s3_sources) > 0 && var.s3_delivery == "direct"

  # Dead-letter target of asynchronous invocations: given, created, or none.
  create_dead_letter_queue = var.dead_letter_target_arn == null && var.create_dead_letter_queue
  dead_letter_target_arn   = var.dead_letter_target_arn != null ? var.dead_letter_target_arn : (local.create_dead_letter_queue ? aws_sqs_queue.dead_letter[0].arn : null)

  # Where Kinesis batches skipped after their retries are reported.
  kinesis_on_failure_arn = var.kinesis_on_failure_destination_arn != null ? var.kinesis_on_failure_destination_arn : (local.create_dead_letter_queue ? aws_sqs_queue.dead_letter[0].arn : null)

  # Every queue or topic the function sends to (dead letters, failure reports).
  send_targets = distinct(compact([
    local.dead_letter_target_arn,
    var.on_failure_destination_arn,
    length(var.kinesis_stream_arns) > 0 ? local.kinesis_on_failure_arn : null,
  ]))
  send_sqs_arns    = [for a in local.send_targets : a if split(":", a)[2] == "sqs"]
  send_sns_arns    = [for a in local.send_targets : a if split(":", a)[2] == "sns"]
  send_lambda_arns = [for a in local.send_targets : a if split(":", a)[2] == "lambda"]
  send_events_arns = [for a in local.send_targets : a if split(":", a)[2] == "events"]

  # The forwarder's environment. Unset options are left out so the forwarder's defaults apply.
  environment_plain = {
    for k, v in {
      SAWMILL_URL                 = var.sawmill_url
      SAWMILL_FAILURE_BUCKET      = local.failure_bucket_name
      SAWMILL_FAILURE_PREFIX      = var.failure_prefix
      SAWMILL_STATIC_FIELDS       = length(var.static_fields) > 0 ? jsonencode(var.static_fields) : null
      SAWMILL_REDACT              = length(var.redact) > 0 ? join(",", var.redact) : null
      SAWMILL_REDACT_REGEX        = var.redact_regex
      SAWMILL_S3_FORMAT           = var.s3_format
      SAWMILL_BATCH_MAX_BYTES     = var.batch_max_bytes == null ? null : tostring(var.batch_max_bytes)
      SAWMILL_BATCH_MAX_EVENTS    = var.batch_max_events == null ? null : tostring(var.batch_max_events)
      SAWMILL_COMPRESSION         = var.compression
      SAWMILL_REQUEST_TIMEOUT     = var.request_timeout
      SAWMILL_CONCURRENCY         = var.concurrency == null ? null : tostring(var.concurrency)
      SAWMILL_S3_MAX_OBJECT_BYTES = var.s3_max_object_bytes == null ? null : tostring(var.s3_max_object_bytes)
      SAWMILL_LOG                 = var.log_level
    } : k => v if v != null
  }
  # Whether a key is set is not secret; the key itself stays marked sensitive in plans.
  has_api_key = nonsensitive(var.sawmill_api_key != null && var.sawmill_api_key != "")
  environment = merge(
    local.environment_plain,
    local.has_api_key ? { SAWMILL_API_KEY = var.sawmill_api_key } : {},
  )

  tags = merge(var.tags, { "sawmill:component" = "forwarder" })
}
