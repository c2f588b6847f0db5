# CloudWatch Logs → forwarder: one subscription filter per log group, each allowed to invoke
# the function by a permission scoped to that group's ARN and to this account; and, for groups
# subscribed outside Terraform, permissions scoped to name prefixes.

resource "aws_lambda_permission" "logs" {
  for_each = toset(var.log_group_names)

  statement_id   = "cloudwatch-logs-${substr(sha256(each.value), 0, 20)}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "logs.amazonaws.com"
  source_arn     = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${each.value}:*"
  source_account = local.account_id
}

# Groups under these prefixes may invoke the function; `sawmill cloudwatch subscribe --prefix`
# puts their subscription filters.
resource "aws_lambda_permission" "logs_prefix" {
  for_each = toset(var.log_group_name_prefixes)

  statement_id   = "cloudwatch-logs-prefix-${substr(sha256(each.value), 0, 20)}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "logs.amazonaws.com"
  source_arn     = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${each.value}*"
  source_account = local.account_id
}

resource "aws_cloudwatch_log_subscription_filter" "this" {
  for_each = toset(var.log_group_names)

  name            = var.log_subscription_filter_name
  log_group_name  = each.value
  filter_pattern  = var.log_subscription_filter_pattern
  destination_arn = aws_lambda_function.this.arn

  depends_on = [aws_lambda_permission.logs]
}
