# ---------------------------------------------------------------------------------------------
# The function
# ---------------------------------------------------------------------------------------------

variable "function_name" {
  description = "Name of the Lambda function; also names its log group (/aws/lambda/NAME), the queues the module creates and its IAM role (NAME-REGION, as IAM is global)."
  type        = string
  default     = "sawmill-forwarder"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be 1 to 64 letters, digits, hyphens or underscores."
  }
}

variable "package_path" {
  description = "Path of the deployment zip built by `cargo lambda build --release --arm64 --bin sawmill-forwarder --output-format zip` (target/lambda/sawmill-forwarder/bootstrap.zip). Build it for the same architecture as var.architecture."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must name the .zip file built by cargo-lambda."
  }
}

variable "architecture" {
  description = "Instruction set of the function: arm64 (Graviton, cheaper per GB-second) or x86_64. Must match the target the zip was built for (--arm64 or --x86-64)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB. CPU grows with memory: large S3 log files decompress and parse faster with more."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB between 128 and 10240."
  }
}

variable "timeout" {
  description = "Timeout of one invocation in seconds. The S3 events queue's visibility timeout is set to six times this value."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds between 1 and 900."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for the function, which also caps it (protects the sawmill server from bursts). null leaves the function on the account's unreserved pool; 0 stops all invocations."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null ? true : (var.reserved_concurrent_executions >= 0 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions)
    error_message = "reserved_concurrent_executions must be null or a whole number >= 0."
  }
}

variable "log_retention_days" {
  description = "Retention in days of the function's own log group (/aws/lambda/FUNCTION_NAME)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer-managed KMS key. When set it encrypts the function's environment (which holds the API key), its log group, the queues and the failure bucket the module creates, and the role gets kms:Decrypt and kms:GenerateDataKey on it. The key policy must let CloudWatch Logs (logs.REGION.amazonaws.com) and, with S3 delivery through SQS, S3 (s3.amazonaws.com) use the key. null uses AWS-managed encryption everywhere."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias."
  }
}

variable "tracing_mode" {
  description = "AWS X-Ray tracing of the function: PassThrough (trace only when the caller sampled the request) or Active (sample and record every invocation; the role then gets xray:PutTraceSegments and xray:PutTelemetryRecords)."
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be PassThrough or Active."
  }
}

variable "vpc_subnet_ids" {
  description = "Subnets to attach the function to, when the sawmill server is only reachable inside a VPC. The subnets need a route to the server and to S3 (gateway endpoint or NAT). Empty runs the function outside any VPC."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.vpc_subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "vpc_subnet_ids must hold subnet IDs (subnet-...)."
  }
}

variable "vpc_security_group_ids" {
  description = "Security groups of the function's network interfaces when vpc_subnet_ids is set; they must allow HTTPS out to the sawmill server and S3."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.vpc_security_group_ids : can(regex("^sg-[0-9a-f]+$", s))])
    error_message = "vpc_security_group_ids must hold security group IDs (sg-...)."
  }
}

variable "code_signing_config_arn" {
  description = "ARN of a Lambda code signing configuration; Lambda then refuses packages not signed by its allowed signing profiles. null deploys the zip unsigned."
  type        = string
  default     = null

  validation {
    condition     = var.code_signing_config_arn == null ? true : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:code-signing-config:csc-[a-z0-9]+$", var.code_signing_config_arn))
    error_message = "code_signing_config_arn must be the ARN of a Lambda code signing configuration."
  }
}

variable "iam_role_permissions_boundary" {
  description = "ARN of a managed policy set as the permissions boundary of the function's role, where the organisation requires one. null sets none."
  type        = string
  default     = null

  validation {
    condition     = var.iam_role_permissions_boundary == null ? true : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.iam_role_permissions_boundary))
    error_message = "iam_role_permissions_boundary must be the ARN of an IAM managed policy."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# What the forwarder reads from its environment
# ---------------------------------------------------------------------------------------------

variable "sawmill_url" {
  description = "Base URL of the sawmill server (SAWMILL_URL), e.g. https://logs.example.com:7480. HTTPS only: the API key travels with every batch."
  type        = string

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\\s]*)?$", var.sawmill_url))
    error_message = "sawmill_url must be an https:// URL such as https://logs.example.com:7480."
  }
}

variable "sawmill_api_key" {
  description = "Ingest API key (SAWMILL_API_KEY) of the sawmill server; sent as `Authorization: Bearer`. It is stored in the function's environment and in the Terraform state: keep the state encrypted and set kms_key_arn. null when the server runs without keys."
  type        = string
  default     = null
  sensitive   = true
}

variable "static_fields" {
  description = "Fields added to every event the forwarder ships (SAWMILL_STATIC_FIELDS, as a JSON object), e.g. { env = \"prod\", team = \"payments\" }. Empty sends none."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(jsonencode(var.static_fields)) <= 1024
    error_message = "static_fields must encode to at most 1024 bytes of JSON (Lambda environments are limited to 4 KB in all)."
  }
}

variable "redact" {
  description = "Built-in redactions applied to every event before it leaves the function (SAWMILL_REDACT): any of email, ipv4, ipv6, ip (both), aws_key, card, bearer, all."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.redact : contains(["email", "ipv4", "ipv6", "ip", "aws_key", "card", "bearer", "all"], r)])
    error_message = "redact may only hold email, ipv4, ipv6, ip, aws_key, card, bearer and all."
  }
}

variable "redact_regex" {
  description = "A custom regular expression whose matches are redacted from every message (SAWMILL_REDACT_REGEX). null redacts nothing beyond var.redact."
  type        = string
  default     = null

  validation {
    condition     = var.redact_regex == null ? true : (length(var.redact_regex) > 0 && can(regexall(var.redact_regex, "")))
    error_message = "redact_regex must be a non-empty, valid regular expression."
  }
}

variable "s3_format" {
  description = "Format of every S3 object the function reads (SAWMILL_S3_FORMAT), overriding detection from the key and content: alb, nlb, vpcflow, cloudtrail, cloudfront, waf, ndjson or lines. null detects the format per object."
  type        = string
  default     = null

  validation {
    condition     = var.s3_format == null ? true : contains(["alb", "nlb", "vpcflow", "cloudtrail", "cloudfront", "waf", "ndjson", "lines"], var.s3_format)
    error_message = "s3_format must be one of alb, nlb, vpcflow, cloudtrail, cloudfront, waf, ndjson, lines (or null to detect)."
  }
}

variable "batch_max_bytes" {
  description = "Largest request body the forwarder sends to sawmill, in bytes of NDJSON before compression (SAWMILL_BATCH_MAX_BYTES, 64 KiB to 64 MiB). null keeps the forwarder's default (4 MiB). Keep it below the server's ingest.max_decompressed_bytes."
  type        = number
  default     = null

  validation {
    condition     = var.batch_max_bytes == null ? true : (var.batch_max_bytes >= 65536 && var.batch_max_bytes <= 67108864 && floor(var.batch_max_bytes) == var.batch_max_bytes)
    error_message = "batch_max_bytes must be null or a whole number of bytes from 65536 to 67108864."
  }
}

variable "batch_max_events" {
  description = "Most events in one request to sawmill (SAWMILL_BATCH_MAX_EVENTS, 1 to 1000000). null keeps the forwarder's default (10000)."
  type        = number
  default     = null

  validation {
    condition     = var.batch_max_events == null ? true : (var.batch_max_events >= 1 && var.batch_max_events <= 1000000 && floor(var.batch_max_events) == var.batch_max_events)
    error_message = "batch_max_events must be null or a whole number from 1 to 1000000."
  }
}

variable "compression" {
  description = "Content-Encoding of requests to sawmill (SAWMILL_COMPRESSION): zstd, gzip or none. null keeps the forwarder's default (zstd)."
  type        = string
  default     = null

  validation {
    condition     = var.compression == null ? true : contains(["zstd", "gzip", "none"], var.compression)
    error_message = "compression must be zstd, gzip or none."
  }
}

variable "request_timeout" {
  description = "Time allowed for one HTTP attempt to sawmill (SAWMILL_REQUEST_TIMEOUT), as a duration such as 10s or 1m; retries follow within the function's timeout. null keeps the forwarder's default (30s)."
  type        = string
  default     = null

  validation {
    condition     = var.request_timeout == null ? true : can(regex("^([0-9]+(ms|s|m|h))+$", var.request_timeout))
    error_message = "request_timeout must be a duration such as 500ms, 10s, 1m or 1m30s."
  }
}

variable "concurrency" {
  description = "Requests to sawmill in flight at once within one invocation (SAWMILL_CONCURRENCY, 1 to 64). null keeps the forwarder's default (4)."
  type        = number
  default     = null

  validation {
    condition     = var.concurrency == null ? true : (var.concurrency >= 1 && var.concurrency <= 64 && floor(var.concurrency) == var.concurrency)
    error_message = "concurrency must be null or a whole number from 1 to 64."
  }
}

variable "s3_max_object_bytes" {
  description = "Largest S3 object the forwarder reads, in bytes after decompression (SAWMILL_S3_MAX_OBJECT_BYTES, at least 1 MiB); larger objects fail rather than exhaust the function. null keeps the forwarder's default (2 GiB)."
  type        = number
  default     = null

  validation {
    condition     = var.s3_max_object_bytes == null ? true : (var.s3_max_object_bytes >= 1048576 && floor(var.s3_max_object_bytes) == var.s3_max_object_bytes)
    error_message = "s3_max_object_bytes must be null or a whole number of bytes >= 1048576."
  }
}

variable "log_level" {
  description = "What the forwarder logs to its own log group (SAWMILL_LOG): a level (error, warn, info, debug, trace) or per-module directives such as sawmill_forwarder=debug,info. null keeps the forwarder's default (info)."
  type        = string
  default     = null

  validation {
    condition     = var.log_level == null ? true : can(regex("^[A-Za-z0-9_:=,.-]+$", var.log_level))
    error_message = "log_level must be a level such as info or directives such as sawmill_forwarder=debug,info."
  }
}

# ---------------------------------------------------------------------------------------------
# Failure bucket: where batches that cannot be delivered are kept for replay
# ---------------------------------------------------------------------------------------------

variable "create_failure_bucket" {
  description = "Create the failure bucket (private, encrypted, versioned, TLS-only, expiring). false uses the existing bucket named by failure_bucket_name."
  type        = bool
  default     = true
}

variable "failure_bucket_name" {
  description = "Name of the failure bucket: the bucket to create (null generates a unique name from function_name), or, with create_failure_bucket = false, the existing bucket to use (required then)."
  type        = string
  default     = null

  validation {
    condition     = var.failure_bucket_name == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.failure_bucket_name))
    error_message = "failure_bucket_name must be a valid S3 bucket name: 3 to 63 lower-case letters, digits, dots or hyphens."
  }
}

variable "failure_prefix" {
  description = "Key prefix under which undeliverable batches are written (SAWMILL_FAILURE_PREFIX). The role can write, read and list only under it, and the expiry rule applies only to it."
  type        = string
  default     = "sawmill-failed/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.'()=-]+(/[A-Za-z0-9!_.'()=-]+)*/$", var.failure_prefix))
    error_message = "failure_prefix must be one or more path segments ending in a slash, e.g. sawmill-failed/, without * or a leading slash."
  }
}

variable "failure_expiration_days" {
  description = "Days after which undeliverable batches under failure_prefix expire. Replay them before then."
  type        = number
  default     = 30

  validation {
    condition     = var.failure_expiration_days >= 1 && var.failure_expiration_days <= 3650 && floor(var.failure_expiration_days) == var.failure_expiration_days
    error_message = "failure_expiration_days must be a whole number between 1 and 3650."
  }
}

variable "failure_noncurrent_expiration_days" {
  description = "Days after which overwritten or deleted (noncurrent) versions in the created failure bucket are removed for good."
  type        = number
  default     = 7

  validation {
    condition     = var.failure_noncurrent_expiration_days >= 1 && var.failure_noncurrent_expiration_days <= 3650 && floor(var.failure_noncurrent_expiration_days) == var.failure_noncurrent_expiration_days
    error_message = "failure_noncurrent_expiration_days must be a whole number between 1 and 3650."
  }
}

variable "failure_bucket_force_destroy" {
  description = "Let `terraform destroy` delete the created failure bucket even when it still holds undelivered batches."
  type        = bool
  default     = false
}

variable "failure_bucket_access_log_bucket" {
  description = "Existing bucket that receives S3 server access logs of the created failure bucket (it must allow the S3 logging service to write). null keeps no access logs."
  type        = string
  default     = null

  validation {
    condition     = var.failure_bucket_access_log_bucket == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.failure_bucket_access_log_bucket))
    error_message = "failure_bucket_access_log_bucket must be a valid S3 bucket name."
  }
}

variable "failure_bucket_access_log_prefix" {
  description = "Key prefix of the failure bucket's access logs in failure_bucket_access_log_bucket."
  type        = string
  default     = "s3-access/sawmill-failures/"
}

# ---------------------------------------------------------------------------------------------
# CloudWatch Logs subscriptions
# ---------------------------------------------------------------------------------------------

variable "log_group_names" {
  description = "CloudWatch Logs groups to subscribe the function to, in the provider's region and account. Each gets a subscription filter and a permission for logs.amazonaws.com scoped to that group. A group has at most two subscription filters. Never list the function's own log group: it would feed on itself."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.log_group_names : can(regex("^[A-Za-z0-9_./#-]{1,512}$", g))])
    error_message = "log_group_names must hold log group names (letters, digits, _ . / # -), not ARNs or patterns."
  }

  validation {
    condition     = length(var.log_group_names) == length(distinct(var.log_group_names))
    error_message = "log_group_names must not repeat a group."
  }
}

variable "log_group_name_prefixes" {
  description = "Log group name prefixes (e.g. /ecs/) whose groups may invoke the function, for groups subscribed outside Terraform with `sawmill cloudwatch subscribe --prefix PREFIX`: one permission per prefix, scoped to log-group:PREFIX*. This module subscribes none of them."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.log_group_name_prefixes : can(regex("^[A-Za-z0-9_./#-]{1,511}$", p))])
    error_message = "log_group_name_prefixes must hold literal log group name prefixes (letters, digits, _ . / # -), without *."
  }
}

variable "log_subscription_filter_name" {
  description = "Name of the subscription filter created on each log group."
  type        = string
  default     = "sawmill"

  validation {
    condition     = can(regex("^[^:*]{1,512}$", var.log_subscription_filter_name))
    error_message = "log_subscription_filter_name must be 1 to 512 characters without : or *."
  }
}

variable "log_subscription_filter_pattern" {
  description = "CloudWatch Logs filter pattern of the subscriptions; \"\" forwards every log event."
  type        = string
  default     = ""
}

# ---------------------------------------------------------------------------------------------
# S3 log files
# ---------------------------------------------------------------------------------------------

variable "s3_sources" {
  description = "Buckets (in the provider's account) whose new objects the function reads, each optionally narrowed to a key prefix and suffix, e.g. { bucket = \"my-alb-logs\", prefix = \"AWSLogs/123456789012/elasticloadbalancing/\" }. The role may read only bucket/prefix*. A bucket may appear more than once with prefixes that do not overlap."
  type = list(object({
    bucket = string
    prefix = optional(string, "")
    suffix = optional(string, "")
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.s3_sources : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", s.bucket))])
    error_message = "Every s3_sources bucket must be a bucket name (not an ARN)."
  }

  validation {
    condition     = alltrue([for s in var.s3_sources : !strcontains(s.prefix, "*") && !startswith(s.prefix, "/") && !strcontains(s.suffix, "*")])
    error_message = "s3_sources prefixes and suffixes are literal: no * and no leading slash."
  }

  validation {
    condition     = length(var.s3_sources) == length(distinct([for s in var.s3_sources : "${s.bucket}|${s.prefix}|${s.suffix}"]))
    error_message = "s3_sources must not repeat the same bucket, prefix and suffix."
  }
}

variable "s3_delivery" {
  description = "How S3 ObjectCreated notifications reach the function: sqs (through a queue with a dead-letter queue and partial batch failure reporting; retries survive throttling and outages) or direct (S3 invokes the function asynchronously)."
  type        = string
  default     = "sqs"

  validation {
    condition     = contains(["sqs", "direct"], var.s3_delivery)
    error_message = "s3_delivery must be sqs or direct."
  }
}

variable "manage_s3_notifications" {
  description = "Create the aws_s3_bucket_notification of every source bucket. A bucket has one notification configuration, which this replaces whole: set false when a bucket already has notifications for other consumers and add the ObjectCreated notification to the queue (output s3_events_queue_arn) or function yourself."
  type        = bool
  default     = true
}

variable "source_kms_key_arns" {
  description = "KMS keys that encrypt source objects (SSE-KMS buckets such as CloudTrail's) or the Kinesis streams; the role gets kms:Decrypt on them, only through S3 and Kinesis."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.source_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", k))])
    error_message = "source_kms_key_arns must hold KMS key ARNs, not aliases."
  }
}

variable "sqs_batch_size" {
  description = "Most S3 notifications (one object each) handed to one invocation from the S3 events queue."
  type        = number
  default     = 10

  validation {
    condition     = var.sqs_batch_size >= 1 && var.sqs_batch_size <= 10000 && floor(var.sqs_batch_size) == var.sqs_batch_size
    error_message = "sqs_batch_size must be a whole number between 1 and 10000."
  }
}

variable "sqs_batching_window_seconds" {
  description = "Seconds Lambda waits to fill a batch from the S3 events queue. Must be at least 1 when sqs_batch_size is over 10."
  type        = number
  default     = 0

  validation {
    condition     = var.sqs_batching_window_seconds >= 0 && var.sqs_batching_window_seconds <= 300 && floor(var.sqs_batching_window_seconds) == var.sqs_batching_window_seconds
    error_message = "sqs_batching_window_seconds must be a whole number between 0 and 300."
  }
}

variable "sqs_maximum_concurrency" {
  description = "Most concurrent invocations the S3 events queue drives (2 to 1000). null lets Lambda scale up to the function's concurrency."
  type        = number
  default     = null

  validation {
    condition     = var.sqs_maximum_concurrency == null ? true : (var.sqs_maximum_concurrency >= 2 && var.sqs_maximum_concurrency <= 1000)
    error_message = "sqs_maximum_concurrency must be null or between 2 and 1000."
  }
}

variable "sqs_max_receive_count" {
  description = "Attempts at an S3 notification before the queue moves it to its dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.sqs_max_receive_count >= 1 && var.sqs_max_receive_count <= 1000 && floor(var.sqs_max_receive_count) == var.sqs_max_receive_count
    error_message = "sqs_max_receive_count must be a whole number between 1 and 1000."
  }
}

variable "sqs_message_retention_seconds" {
  description = "How long the S3 events queue keeps a notification not yet processed."
  type        = number
  default     = 345600

  validation {
    condition     = var.sqs_message_retention_seconds >= 60 && var.sqs_message_retention_seconds <= 1209600
    error_message = "sqs_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

# ---------------------------------------------------------------------------------------------
# Kinesis streams carrying CloudWatch Logs data
# ---------------------------------------------------------------------------------------------

variable "kinesis_stream_arns" {
  description = "Kinesis data streams whose records (CloudWatch Logs subscription data) the function reads. The role gets read access to these streams only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.kinesis_stream_arns : can(regex("^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:[0-9]{12}:stream/[A-Za-z0-9_.-]{1,128}$", s))])
    error_message = "kinesis_stream_arns must hold Kinesis stream ARNs (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)."
  }
}

variable "kinesis_starting_position" {
  description = "Where a new Kinesis mapping starts reading: LATEST (new records only) or TRIM_HORIZON (everything the stream still holds)."
  type        = string
  default     = "LATEST"

  validation {
    condition     = contains(["LATEST", "TRIM_HORIZON"], var.kinesis_starting_position)
    error_message = "kinesis_starting_position must be LATEST or TRIM_HORIZON."
  }
}

variable "kinesis_batch_size" {
  description = "Most Kinesis records handed to one invocation."
  type        = number
  default     = 100

  validation {
    condition     = var.kinesis_batch_size >= 1 && var.kinesis_batch_size <= 10000 && floor(var.kinesis_batch_size) == var.kinesis_batch_size
    error_message = "kinesis_batch_size must be a whole number between 1 and 10000."
  }
}

variable "kinesis_batching_window_seconds" {
  description = "Seconds Lambda waits to fill a Kinesis batch."
  type        = number
  default     = 5

  validation {
    condition     = var.kinesis_batching_window_seconds >= 0 && var.kinesis_batching_window_seconds <= 300 && floor(var.kinesis_batching_window_seconds) == var.kinesis_batching_window_seconds
    error_message = "kinesis_batching_window_seconds must be a whole number between 0 and 300."
  }
}

variable "kinesis_parallelization_factor" {
  description = "Concurrent batches per shard (1 to 10); records with the same partition key stay in order."
  type        = number
  default     = 1

  validation {
    condition     = var.kinesis_parallelization_factor >= 1 && var.kinesis_parallelization_factor <= 10 && floor(var.kinesis_parallelization_factor) == var.kinesis_parallelization_factor
    error_message = "kinesis_parallelization_factor must be a whole number between 1 and 10."
  }
}

variable "kinesis_maximum_retry_attempts" {
  description = "Retries of a failing Kinesis batch before its records are skipped and reported to the on-failure destination; each retry starts at the first failed record and halves the batch to isolate a bad one. -1 retries until the records expire."
  type        = number
  default     = 5

  validation {
    condition     = var.kinesis_maximum_retry_attempts >= -1 && var.kinesis_maximum_retry_attempts <= 10000 && floor(var.kinesis_maximum_retry_attempts) == var.kinesis_maximum_retry_attempts
    error_message = "kinesis_maximum_retry_attempts must be a whole number between -1 and 10000."
  }
}

variable "kinesis_maximum_record_age_seconds" {
  description = "Kinesis records older than this are skipped (and reported to the on-failure destination). -1 never skips for age."
  type        = number
  default     = 86400

  validation {
    condition     = var.kinesis_maximum_record_age_seconds == -1 || (var.kinesis_maximum_record_age_seconds >= 60 && var.kinesis_maximum_record_age_seconds <= 604800)
    error_message = "kinesis_maximum_record_age_seconds must be -1 or between 60 and 604800."
  }
}

variable "kinesis_on_failure_destination_arn" {
  description = "SQS queue or SNS topic told about Kinesis batches skipped after their retries (shard, sequence numbers: enough to re-read them while the stream keeps them). null uses the module's dead-letter queue when it creates one."
  type        = string
  default     = null

  validation {
    condition     = var.kinesis_on_failure_destination_arn == null ? true : can(regex("^arn:aws[a-z-]*:(sqs|sns):[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.kinesis_on_failure_destination_arn))
    error_message = "kinesis_on_failure_destination_arn must be an SQS queue or SNS topic ARN."
  }
}

# ---------------------------------------------------------------------------------------------
# Asynchronous invocations (CloudWatch Logs subscriptions, direct S3 notifications)
# ---------------------------------------------------------------------------------------------

variable "create_dead_letter_queue" {
  description = "Create an SQS dead-letter queue (encrypted, 14-day retention) for asynchronous invocations that fail all their attempts, so no CloudWatch Logs or direct S3 event is dropped silently. Ignored when dead_letter_target_arn is set."
  type        = bool
  default     = true
}

variable "dead_letter_target_arn" {
  description = "Existing SQS queue or SNS topic used as the function's dead-letter target instead of the queue the module creates."
  type        = string
  default     = null

  validation {
    condition     = var.dead_letter_target_arn == null ? true : can(regex("^arn:aws[a-z-]*:(sqs|sns):[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.dead_letter_target_arn))
    error_message = "dead_letter_target_arn must be an SQS queue or SNS topic ARN."
  }
}

variable "on_failure_destination_arn" {
  description = "SQS queue, SNS topic, Lambda function or EventBridge bus that receives a record of each asynchronous invocation that failed all its attempts (with the request and the error). null sets no destination (the dead-letter queue still gets the event)."
  type        = string
  default     = null

  validation {
    condition     = var.on_failure_destination_arn == null ? true : can(regex("^arn:aws[a-z-]*:(sqs|sns|lambda|events):[a-z0-9-]+:[0-9]{12}:.+$", var.on_failure_destination_arn))
    error_message = "on_failure_destination_arn must be the ARN of an SQS queue, SNS topic, Lambda function or EventBridge event bus."
  }
}

variable "async_maximum_retry_attempts" {
  description = "Retries (0 to 2) of an asynchronous invocation that failed, before the event goes to the dead-letter queue."
  type        = number
  default     = 2

  validation {
    condition     = contains([0, 1, 2], var.async_maximum_retry_attempts)
    error_message = "async_maximum_retry_attempts must be 0, 1 or 2."
  }
}

variable "async_maximum_event_age_seconds" {
  description = "Asynchronous events not processed within this many seconds (60 to 21600) go to the dead-letter queue."
  type        = number
  default     = 21600

  validation {
    condition     = var.async_maximum_event_age_seconds >= 60 && var.async_maximum_event_age_seconds <= 21600 && floor(var.async_maximum_event_age_seconds) == var.async_maximum_event_age_seconds
    error_message = "async_maximum_event_age_seconds must be a whole number between 60 and 21600."
  }
}
