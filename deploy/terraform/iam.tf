# The function's execution role: least privilege. Every statement names the resources it
# applies to; the only Resource "*" statements are the two AWS offers no narrower form of
# (X-Ray trace upload, and the EC2 network-interface calls Lambda makes for VPC attachment),
# and each is present only when its feature is turned on.

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "LambdaAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  # IAM is global and forwarders are regional (one per region with log groups): the region
  # keeps the role names of the same function in two regions apart.
  name                 = substr("${var.function_name}-${local.region}", 0, 64)
  description          = "Execution role of the sawmill forwarder ${var.function_name}"
  assume_role_policy   = data.aws_iam_policy_document.assume_role.json
  permissions_boundary = var.iam_role_permissions_boundary
  tags                 = local.tags
}

data "aws_iam_policy_document" "this" {
  # Its own log group only.
  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}:log-stream:*"]
  }

  # New log files in the source buckets, only under each configured prefix.
  dynamic "statement" {
    for_each = length(local.s3_object_arns) > 0 ? [local.s3_object_arns] : []
    content {
      sid       = "ReadSourceObjects"
      effect    = "Allow"
      actions   = ["s3:GetObject"]
      resources = statement.value
    }
  }

  # Undeliverable batches, only under the prefix: written, and for `sawmill-forwarder replay`
  # listed, read back and deleted once delivered (a delete marker: the bucket is versioned).
  statement {
    sid       = "WriteAndReplayFailedBatches"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    resources = ["${local.failure_bucket_arn}/${var.failure_prefix}*"]
  }

  statement {
    sid       = "ListFailedBatches"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.failure_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.failure_prefix}*"]
    }
  }

  # The S3 events queue this module creates, and nothing else.
  dynamic "statement" {
    for_each = local.s3_via_sqs ? [aws_sqs_queue.s3_events[0].arn] : []
    content {
      sid       = "ConsumeS3EventsQueue"
      effect    = "Allow"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
      resources = [statement.value]
    }
  }

  # The configured Kinesis streams, read only.
  dynamic "statement" {
    for_each = length(var.kinesis_stream_arns) > 0 ? [var.kinesis_stream_arns] : []
    content {
      sid    = "ReadKinesisStreams"
      effect = "Allow"
      actions = [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
      ]
      resources = statement.value
    }
  }

  # Dead-letter queue, on-failure destinations: send only, to those targets only.
  dynamic "statement" {
    for_each = length(local.send_sqs_arns) > 0 ? [local.send_sqs_arns] : []
    content {
      sid       = "SendFailuresToQueues"
      effect    = "Allow"
      actions   = ["sqs:SendMessage"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(local.send_sns_arns) > 0 ? [local.send_sns_arns] : []
    content {
      sid       = "SendFailuresToTopics"
      effect    = "Allow"
      actions   = ["sns:Publish"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(local.send_lambda_arns) > 0 ? [local.send_lambda_arns] : []
    content {
      sid       = "SendFailuresToFunctions"
      effect    = "Allow"
      actions   = ["lambda:InvokeFunction"]
      resources = statement.value
    }
  }

  dynamic "statement" {
    for_each = length(local.send_events_arns) > 0 ? [local.send_events_arns] : []
    content {
      sid       = "SendFailuresToEventBuses"
      effect    = "Allow"
      actions   = ["events:PutEvents"]
      resources = statement.value
    }
  }

  # The module's KMS key (environment, queues, failure bucket), when one is given.
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "UseModuleKey"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }

  # Keys of SSE-KMS source buckets and encrypted streams: decrypt, and only through S3 or Kinesis.
  dynamic "statement" {
    for_each = length(var.source_kms_key_arns) > 0 ? [var.source_kms_key_arns] : []
    content {
      sid       = "DecryptSources"
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = statement.value

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com", "kinesis.${local.region}.amazonaws.com"]
      }
    }
  }

  # Documented exception: X-Ray's PutTraceSegments and PutTelemetryRecords have no
  # resource-level permissions. Only with tracing_mode = "Active".
  dynamic "statement" {
    for_each = var.tracing_mode == "Active" ? [1] : []
    content {
      sid       = "WriteXRayTraces"
      effect    = "Allow"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  # Documented exception: the network-interface calls Lambda makes to attach the function to
  # the VPC, as in AWS's AWSLambdaENIManagementAccess policy, which grants them on "*"; the
  # Describe calls accept nothing narrower. Only with vpc_subnet_ids.
  dynamic "statement" {
    for_each = length(var.vpc_subnet_ids) > 0 ? [1] : []
    content {
      sid    = "ManageVpcNetworkInterfaces"
      effect = "Allow"
      actions = [
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "sawmill-forwarder"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
