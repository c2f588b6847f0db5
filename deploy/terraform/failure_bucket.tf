# The failure bucket: where the forwarder writes batches sawmill did not accept after its
# retries, under var.failure_prefix, to be replayed later. Created here unless an existing
# bucket is named (create_failure_bucket = false): private, encrypted, versioned, reachable
# over TLS 1.2+ only, failures expiring after var.failure_expiration_days.

resource "aws_s3_bucket" "failures" {
  #checkov:skip=CKV_AWS_144:Cross-region replication does not fit this bucket: it holds short-lived copies of batches awaiting replay, which expire after var.failure_expiration_days
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of this bucket: failed batches are replayed by listing the prefix, so event notifications would only add cost
  count = var.create_failure_bucket ? 1 : 0

  bucket        = var.failure_bucket_name
  bucket_prefix = var.failure_bucket_name == null ? "${trim(substr(replace(lower(var.function_name), "_", "-"), 0, 28), "-")}-failed-" : null
  force_destroy = var.failure_bucket_force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "failures" {
  count = var.create_failure_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.failures[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "failures" {
  count = var.create_failure_bucket ? 1 : 0

  bucket = aws_s3_bucket.failures[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "failures" {
  count = var.create_failure_bucket ? 1 : 0

  bucket = aws_s3_bucket.failures[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "failures" {
  count = var.create_failure_bucket ? 1 : 0

  bucket = aws_s3_bucket.failures[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "failures" {
  count = var.create_failure_bucket ? 1 : 0

  bucket = aws_s3_bucket.failures[0].id

  rule {
    id     = "expire-undelivered-batches"
    status = "Enabled"

    filter {
      prefix = var.failure_prefix
    }

    expiration {
      days = var.failure_expiration_days
    }
  }

  # Expired batches become noncurrent versions and delete markers: remove those too.
  rule {
    id     = "clean-up-bucket"
    status = "Enabled"

    filter {}

    expiration {
      expired_object_delete_marker = true
    }

    noncurrent_version_expiration {
      noncurrent_days = var.failure_noncurrent_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # Rules apply to objects already in the bucket once versioning is on.
  depends_on = [aws_s3_bucket_versioning.failures]
}

resource "aws_s3_bucket_logging" "failures" {
  count = var.create_failure_bucket && var.failure_bucket_access_log_bucket != null ? 1 : 0

  bucket        = aws_s3_bucket.failures[0].id
  target_bucket = var.failure_bucket_access_log_bucket
  target_prefix = var.failure_bucket_access_log_prefix
}

data "aws_iam_policy_document" "failures_bucket" {
  count = var.create_failure_bucket ? 1 : 0

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.failures[0].arn,
      "${aws_s3_bucket.failures[0].arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid     = "DenyOutdatedTls"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.failures[0].arn,
      "${aws_s3_bucket.failures[0].arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "failures" {
  count = var.create_failure_bucket ? 1 : 0

  bucket = aws_s3_bucket.failures[0].id
  policy = data.aws_iam_policy_document.failures_bucket[0].json

  # Putting a bucket policy while public access settings change can fail; order them.
  depends_on = [aws_s3_bucket_public_access_block.failures]
}
