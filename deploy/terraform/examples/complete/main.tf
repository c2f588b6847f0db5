# A complete deployment of the sawmill forwarder: a customer-managed KMS key for its
# environment (which holds the API key), logs, queues and failure bucket, and the forwarder
# subscribed to CloudWatch Logs groups, S3 log buckets (through SQS) and Kinesis streams.
#
#   cargo lambda build --release --arm64 --bin sawmill-forwarder --output-format zip
#   cd deploy/terraform/examples/complete
#   cp terraform.tfvars.example terraform.tfvars    # then edit it
#   export TF_VAR_sawmill_api_key=...               # from `sawmill keys create --scope ingest`
#   terraform init && terraform plan -out plan && terraform apply plan

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  # The log group the module creates for the function, which CloudWatch Logs encrypts with the key.
  function_log_group_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.function_name}"
  source_bucket_arns     = distinct([for s in var.s3_sources : "arn:${local.partition}:s3:::${s.bucket}"])

  tags = merge(var.tags, { application = "sawmill" })
}

# Key policy. Resource "*" in a key policy means this key. The account statement is AWS's
# default key policy: it lets IAM policies in this account grant use of the key (the
# forwarder's role gets kms:Decrypt and kms:GenerateDataKey from the module).
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:Key policy: the account-root statement is AWS's default key policy, which keeps the key administrable and delegates its use to IAM; Resource "*" there means this key only
  #checkov:skip=CKV_AWS_111:Key policy: the account-root statement is AWS's default key policy, which keeps the key administrable and delegates its use to IAM; Resource "*" there means this key only
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" in a key policy means this key only
  statement {
    sid       = "AccountAdministersKey"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid    = "CloudWatchLogsEncryptsForwarderLogs"
    effect = "Allow"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [local.function_log_group_arn]
    }
  }

  # S3 encrypts the notifications it sends to the (KMS-encrypted) S3 events queue.
  dynamic "statement" {
    for_each = length(local.source_bucket_arns) > 0 ? [local.source_bucket_arns] : []
    content {
      sid       = "SourceBucketsEncryptNotifications"
      effect    = "Allow"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = ["*"]

      principals {
        type        = "Service"
        identifiers = ["s3.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }

      condition {
        test     = "ArnLike"
        variable = "aws:SourceArn"
        values   = statement.value
      }
    }
  }
}

resource "aws_kms_key" "sawmill" {
  description             = "sawmill forwarder: environment, logs, queues and failure bucket"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "sawmill" {
  name          = "alias/${var.function_name}"
  target_key_id = aws_kms_key.sawmill.key_id
}

module "sawmill_forwarder" {
  source = "../.."

  function_name = var.function_name
  package_path  = var.package_path
  architecture  = "arm64"
  memory_size   = 256
  timeout       = 60

  sawmill_url     = var.sawmill_url
  sawmill_api_key = var.sawmill_api_key
  static_fields   = var.static_fields
  redact          = var.redact
  compression     = "zstd"

  kms_key_arn        = aws_kms_key.sawmill.arn
  log_retention_days = 30

  log_group_names         = var.log_group_names
  log_group_name_prefixes = var.log_group_name_prefixes
  s3_sources              = var.s3_sources
  s3_delivery             = "sqs"
  kinesis_stream_arns     = var.kinesis_stream_arns

  failure_expiration_days = 14

  tags = local.tags
}
