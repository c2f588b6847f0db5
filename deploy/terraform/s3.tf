# S3 log files → forwarder. Each source bucket notifies on s3:ObjectCreated:* (optionally
# narrowed by prefix and suffix) either through an SQS queue that Lambda polls (default:
# retries, a dead-letter queue, partial batch failure reporting) or directly (asynchronous
# invocation, failures to the function's dead-letter queue).

# --- direct delivery -------------------------------------------------------------------------

resource "aws_lambda_permission" "s3" {
  for_each = local.s3_direct ? local.s3_buckets : toset([])

  statement_id   = "s3-${substr(sha256(each.value), 0, 20)}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = "arn:${local.partition}:s3:::${each.value}"
  source_account = local.account_id
}

# --- delivery through SQS --------------------------------------------------------------------

resource "aws_sqs_queue" "s3_events_dlq" {
  count = local.s3_via_sqs ? 1 : 0

  name                              = "${var.function_name}-s3-events-dlq"
  message_retention_seconds         = 1209600
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 3600
  tags                              = local.tags
}

resource "aws_sqs_queue" "s3_events" {
  count = local.s3_via_sqs ? 1 : 0

  name = "${var.function_name}-s3-events"
  # AWS's guidance for a queue polled by Lambda: at least six times the function's timeout.
  visibility_timeout_seconds        = min(43200, max(30, var.timeout * 6))
  message_retention_seconds         = var.sqs_message_retention_seconds
  receive_wait_time_seconds         = 20
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 3600

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.s3_events_dlq[0].arn
    maxReceiveCount     = var.sqs_max_receive_count
  })

  tags = local.tags
}

# Only the events queue may move messages into its dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "s3_events_dlq" {
  count = local.s3_via_sqs ? 1 : 0

  queue_url = aws_sqs_queue.s3_events_dlq[0].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.s3_events[0].arn]
  })
}

# Only S3, only for the source buckets, only from this account, may send to the queue.
data "aws_iam_policy_document" "s3_events_queue" {
  count = local.s3_via_sqs ? 1 : 0

  statement {
    sid       = "SourceBucketsSendObjectCreated"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.s3_events[0].arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = local.s3_bucket_arns
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "s3_events" {
  count = local.s3_via_sqs ? 1 : 0

  queue_url = aws_sqs_queue.s3_events[0].id
  policy    = data.aws_iam_policy_document.s3_events_queue[0].json
}

resource "aws_lambda_event_source_mapping" "s3_events" {
  count = local.s3_via_sqs ? 1 : 0

  event_source_arn                   = aws_sqs_queue.s3_events[0].arn
  function_name                      = aws_lambda_function.this.arn
  batch_size                         = var.sqs_batch_size
  maximum_batching_window_in_seconds = var.sqs_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = var.sqs_maximum_concurrency == null ? [] : [var.sqs_maximum_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }

  depends_on = [aws_iam_role_policy.this]

  lifecycle {
    precondition {
      condition     = var.sqs_batch_size <= 10 || var.sqs_batching_window_seconds >= 1
      error_message = "sqs_batch_size over 10 needs sqs_batching_window_seconds of at least 1."
    }
  }
}

# --- the notifications -----------------------------------------------------------------------

# One per bucket: a bucket has a single notification configuration, which this replaces.
resource "aws_s3_bucket_notification" "sources" {
  for_each = var.manage_s3_notifications ? local.s3_sources_by_key : {}

  bucket = each.key

  dynamic "queue" {
    for_each = local.s3_via_sqs ? each.value : []
    content {
      id            = "sawmill-${substr(sha256("${queue.value.prefix}|${queue.value.suffix}"), 0, 16)}"
      queue_arn     = aws_sqs_queue.s3_events[0].arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = queue.value.prefix == "" ? null : queue.value.prefix
      filter_suffix = queue.value.suffix == "" ? null : queue.value.suffix
    }
  }

  dynamic "lambda_function" {
    for_each = local.s3_direct ? each.value : []
    content {
      id                  = "sawmill-${substr(sha256("${lambda_function.value.prefix}|${lambda_function.value.suffix}"), 0, 16)}"
      lambda_function_arn = aws_lambda_function.this.arn
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = lambda_function.value.prefix == "" ? null : lambda_function.value.prefix
      filter_suffix       = lambda_function.value.suffix == "" ? null : lambda_function.value.suffix
    }
  }

  # S3 checks that it may deliver to the destination when the configuration is written.
  depends_on = [
    aws_sqs_queue_policy.s3_events,
    aws_lambda_permission.s3,
  ]
}
