resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:These are the forwarder's own operational logs, not the logs it ships; their retention is var.log_retention_days (30 days by default) and a year would be a cost chosen for the operator
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

resource "aws_lambda_function" "this" {
  function_name = var.function_name
  description   = "sawmill forwarder: ships CloudWatch Logs, S3 log files, Kinesis and SQS records to sawmill"
  role          = aws_iam_role.this.arn

  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.architecture]
  package_type  = "Zip"

  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)

  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions == null ? -1 : var.reserved_concurrent_executions

  kms_key_arn             = var.kms_key_arn
  code_signing_config_arn = var.code_signing_config_arn

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  dynamic "dead_letter_config" {
    for_each = local.dead_letter_target_arn == null ? [] : [local.dead_letter_target_arn]
    content {
      target_arn = dead_letter_config.value
    }
  }

  dynamic "vpc_config" {
    for_each = length(var.vpc_subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = var.vpc_security_group_ids
    }
  }

  tags = local.tags

  # The log group must exist before the first invocation, or Lambda would create it without
  # retention; the role's policy must exist before Lambda checks the dead-letter target.
  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.this,
  ]

  lifecycle {
    precondition {
      condition     = var.create_failure_bucket || var.failure_bucket_name != null
      error_message = "With create_failure_bucket = false, failure_bucket_name must name the existing failure bucket."
    }
    precondition {
      condition     = length(var.vpc_subnet_ids) == 0 || length(var.vpc_security_group_ids) > 0
      error_message = "vpc_subnet_ids needs at least one security group in vpc_security_group_ids."
    }
    precondition {
      condition     = length(var.vpc_security_group_ids) == 0 || length(var.vpc_subnet_ids) > 0
      error_message = "vpc_security_group_ids is only used with vpc_subnet_ids; set both or neither."
    }
    precondition {
      condition     = !contains(var.log_group_names, local.log_group_name)
      error_message = "log_group_names must not include the function's own log group (${local.log_group_name}): the forwarder would forward its own logs forever."
    }
  }
}

# How Lambda handles asynchronous invocations (CloudWatch Logs subscriptions and direct S3
# notifications): bounded retries, then the dead-letter queue and the on-failure destination.
resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.async_maximum_retry_attempts
  maximum_event_age_in_seconds = var.async_maximum_event_age_seconds

  dynamic "destination_config" {
    for_each = var.on_failure_destination_arn == null ? [] : [var.on_failure_destination_arn]
    content {
      on_failure {
        destination = destination_config.value
      }
    }
  }
}

resource "aws_sqs_queue" "dead_letter" {
  count = local.create_dead_letter_queue ? 1 : 0

  name                              = "${var.function_name}-dlq"
  message_retention_seconds         = 1209600
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 3600
  tags                              = local.tags
}
