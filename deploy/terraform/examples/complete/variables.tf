variable "region" {
  description = "AWS region to deploy the forwarder in; the log groups, buckets and streams it reads must be in this region too."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "function_name" {
  description = "Name of the forwarder function (and of its role, log group and queues)."
  type        = string
  default     = "sawmill-forwarder"
}

variable "package_path" {
  description = "The zip built by `cargo lambda build --release --arm64 --bin sawmill-forwarder --output-format zip`, relative to this directory by default."
  type        = string
  default     = "../../../../target/lambda/sawmill-forwarder/bootstrap.zip"
}

variable "sawmill_url" {
  description = "Base URL of the sawmill server, e.g. https://logs.example.com:7480."
  type        = string
}

variable "sawmill_api_key" {
  description = "Ingest API key (`sawmill keys create --tenant T --scope ingest` prints it). Pass it with TF_VAR_sawmill_api_key rather than a file."
  type        = string
  default     = null
  sensitive   = true
}

variable "log_group_names" {
  description = "CloudWatch Logs groups to forward."
  type        = list(string)
  default     = []
}

variable "log_group_name_prefixes" {
  description = "Prefixes of log groups to be subscribed later with `sawmill cloudwatch subscribe --prefix`; the function accepts their events."
  type        = list(string)
  default     = []
}

variable "s3_sources" {
  description = "Buckets (and key prefixes) whose new log files to forward, e.g. ALB access logs or CloudTrail."
  type = list(object({
    bucket = string
    prefix = optional(string, "")
    suffix = optional(string, "")
  }))
  default = []
}

variable "kinesis_stream_arns" {
  description = "Kinesis streams carrying CloudWatch Logs subscription data to forward."
  type        = list(string)
  default     = []
}

variable "static_fields" {
  description = "Fields added to every forwarded event."
  type        = map(string)
  default     = {}
}

variable "redact" {
  description = "Built-in redactions to apply before events leave the account: email, ipv4, aws_key, card."
  type        = list(string)
  default     = ["aws_key", "card"]
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
