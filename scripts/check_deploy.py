#!/usr/bin/env python3
"""Offline checks of the Terraform under deploy/terraform (run by scripts/check-deploy).

    check_deploy.py hcl DIR              parse every .tf file under DIR with python-hcl2 and
                                         check the structure (see check_tree)
    check_deploy.py checkov REPORT DIR   judge checkov's JSON report of DIR: every failed check
                                         fails, and every `#checkov:skip` comment must give a
                                         reason and suppress a check that checkov really ran

Exit status 0 when everything holds, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The environment the module gives the function: every setting of the forwarder that matters on
# Lambda (SAWMILL_S3_FORCE_PATH_STYLE, for S3-compatible servers, does not). Each must also be
# read by the forwarder's source, when it is beside deploy/ (crates/sawmill-forwarder/src).
FORWARDER_ENV = {
    "SAWMILL_URL",
    "SAWMILL_API_KEY",
    "SAWMILL_FAILURE_BUCKET",
    "SAWMILL_FAILURE_PREFIX",
    "SAWMILL_STATIC_FIELDS",
    "SAWMILL_REDACT",
    "SAWMILL_REDACT_REGEX",
    "SAWMILL_S3_FORMAT",
    "SAWMILL_S3_MAX_OBJECT_BYTES",
    "SAWMILL_BATCH_MAX_BYTES",
    "SAWMILL_BATCH_MAX_EVENTS",
    "SAWMILL_COMPRESSION",
    "SAWMILL_REQUEST_TIMEOUT",
    "SAWMILL_CONCURRENCY",
    "SAWMILL_LOG",
}
FORWARDER_SOURCE = Path("crates/sawmill-forwarder/src")  # relative to the repository

# IAM statements allowed to grant on Resource "*", each because AWS offers nothing narrower.
# Each must sit in a dynamic block (present only when its feature is on) and be explained in
# deploy/README.md under its Sid.
WILDCARD_RESOURCE_SIDS = {
    "WriteXRayTraces": "xray:PutTraceSegments/PutTelemetryRecords have no resource-level permissions",
    "ManageVpcNetworkInterfaces": "Lambda's ENI calls for VPC attachment; EC2 Describe* has no resource-level permissions",
}

# Blocks whose "policy"-like attributes must come from an aws_iam_policy_document, so that the
# statements are checked here.
POLICY_ATTRIBUTES = {"policy", "assume_role_policy"}

MIN_TERRAFORM = (1, 5)
MIN_AWS_PROVIDER = 5

SKIP_RE = re.compile(r"#\s*checkov:skip=([^\s:]*)(?::(.*))?$")
CHECK_ID_RE = re.compile(r"^CKV2?_[A-Z0-9]+_[0-9]+$")
MIN_REASON_WORDS = 6

META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}


# --------------------------------------------------------------------------------------------
# Reading python-hcl2's output
# --------------------------------------------------------------------------------------------


def unquote(value):
    """A python-hcl2 string literal keeps its quotes; labels too. Strip them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def is_literal(value) -> bool:
    return isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"'


def interpolations(text: str) -> list[str]:
    """The expressions inside ${...} of a python-hcl2 string, braces matched."""
    out = []
    i = 0
    while True:
        start = text.find("${", i)
        if start < 0:
            return out
        depth = 0
        j = start + 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append(text[start + 2 : j])
        i = j + 1


def strings_in(value):
    """Every string inside a parsed value, keys and comments excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in ("__comments__", "__inline_comments__"):
                continue
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def labelled(blocks, depth: int):
    """Flatten python-hcl2's [{"\"type\"": {"\"name\"": body}}] into (labels, body)."""
    for block in as_list(blocks):
        yield from _labelled(block, depth, ())


def _labelled(node, depth, labels):
    if depth == 0:
        yield labels, node
        return
    for key, value in node.items():
        if key.startswith("__"):
            continue
        yield from _labelled(value, depth - 1, labels + (unquote(key),))


# --------------------------------------------------------------------------------------------
# A Terraform module: the .tf files of one directory
# --------------------------------------------------------------------------------------------


@dataclass
class Module:
    path: Path
    files: dict[str, dict] = field(default_factory=dict)  # file name -> parsed
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, object] = field(default_factory=dict)
    resources: dict[str, tuple[str, dict]] = field(default_factory=dict)  # "type.name" -> (file, body)
    data: dict[str, tuple[str, dict]] = field(default_factory=dict)
    modules: dict[str, tuple[str, dict]] = field(default_factory=dict)
    terraform: list[tuple[str, dict]] = field(default_factory=list)


def load_module(path: Path, problems: list[str], hcl2) -> Module:
    module = Module(path)
    for tf in sorted(path.glob("*.tf")):
        try:
            with tf.open(encoding="utf-8") as f:
                parsed = hcl2.load(f)
        except Exception as exc:  # python-hcl2 raises lark errors of several kinds
            problems.append(f"{tf}: does not parse as HCL: {exc}")
            continue
        module.files[tf.name] = parsed
        for (name,), body in labelled(parsed.get("variable"), 1):
            module.variables[name] = body
        for (name,), body in labelled(parsed.get("output"), 1):
            module.outputs[name] = body
        for block in as_list(parsed.get("locals")):
            for k, v in block.items():
                if not k.startswith("__"):
                    module.locals[k] = v
        for (kind, name), body in labelled(parsed.get("resource"), 2):
            module.resources[f"{kind}.{name}"] = (tf.name, body)
        for (kind, name), body in labelled(parsed.get("data"), 2):
            module.data[f"{kind}.{name}"] = (tf.name, body)
        for (name,), body in labelled(parsed.get("module"), 1):
            module.modules[name] = (tf.name, body)
        for body in as_list(parsed.get("terraform")):
            module.terraform.append((tf.name, body))
    return module


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

VAR_RE = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")
LOCAL_RE = re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)")
DATA_RE = re.compile(r"(?<![\w.])data\.([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)")
RESOURCE_RE = re.compile(r"(?<![\w.])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)")
MODULE_RE = re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")


def check_variables(module: Module, problems: list[str]) -> None:
    for name, body in module.variables.items():
        where = f"{module.path}: variable {name}"
        description = unquote(body.get("description", ""))
        if not is_literal(body.get("description")) or len(description.strip()) < 10:
            problems.append(f"{where}: needs a description (a sentence saying what it does)")
        if "type" not in body:
            problems.append(f"{where}: needs a type")
        for validation in as_list(body.get("validation")):
            if not is_literal(validation.get("error_message")):
                problems.append(f"{where}: every validation needs an error_message")
    for name, body in module.outputs.items():
        if not is_literal(body.get("description")):
            problems.append(f"{module.path}: output {name} needs a description")


def check_references(module: Module, modules: dict[Path, Module], problems: list[str]) -> None:
    for file_name, parsed in module.files.items():
        where = f"{module.path / file_name}"
        for text in strings_in(parsed):
            for expr in interpolations(text):
                for name in VAR_RE.findall(expr):
                    if name not in module.variables:
                        problems.append(f"{where}: var.{name} is not declared")
                for name in LOCAL_RE.findall(expr):
                    if name not in module.locals:
                        problems.append(f"{where}: local.{name} is not defined")
                for kind, name in DATA_RE.findall(expr):
                    if f"{kind}.{name}" not in module.data:
                        problems.append(f"{where}: data.{kind}.{name} does not exist")
                without_data = DATA_RE.sub("", expr)
                for kind, name in RESOURCE_RE.findall(without_data):
                    if f"{kind}.{name}" not in module.resources:
                        problems.append(f"{where}: {kind}.{name} does not exist")
                for name, output in MODULE_RE.findall(expr):
                    if name not in module.modules:
                        problems.append(f"{where}: module.{name} does not exist")
                        continue
                    child = child_module(module, name, modules)
                    if child is not None and output not in child.outputs:
                        problems.append(f"{where}: module.{name}.{output}: the module has no output {output}")


def child_module(module: Module, name: str, modules: dict[Path, Module]) -> Module | None:
    _, body = module.modules[name]
    source = unquote(body.get("source", ""))
    return modules.get((module.path / source).resolve())


def check_module_calls(module: Module, modules: dict[Path, Module], problems: list[str]) -> None:
    for name, (file_name, body) in module.modules.items():
        where = f"{module.path / file_name}: module {name}"
        source = unquote(body.get("source", ""))
        if not source.startswith("."):
            problems.append(f"{where}: source must be a local path (the check runs offline)")
            continue
        child = modules.get((module.path / source).resolve())
        if child is None:
            problems.append(f"{where}: source {source} is not a module directory")
            continue
        given = {k for k in body if not k.startswith("__") and k not in META_ARGUMENTS}
        for argument in sorted(given - set(child.variables)):
            problems.append(f"{where}: {argument} is not a variable of {source}")
        for variable, spec in child.variables.items():
            if "default" not in spec and variable not in given:
                problems.append(f"{where}: required variable {variable} of {source} is not set")


def version_floor(constraint: str) -> tuple[int, ...] | None:
    m = re.search(r">=\s*([0-9]+)(?:\.([0-9]+))?", constraint)
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2) or 0))


def check_versions(module: Module, problems: list[str]) -> None:
    where = f"{module.path}"
    if not module.terraform:
        problems.append(f"{where}: needs a terraform block with required_version and required_providers")
        return
    required_version = None
    aws = None
    for _, body in module.terraform:
        if "required_version" in body:
            required_version = unquote(body["required_version"])
        for providers in as_list(body.get("required_providers")):
            if "aws" in providers:
                aws = providers["aws"]
    floor = version_floor(required_version or "")
    if floor is None or floor < MIN_TERRAFORM:
        problems.append(f"{where}: required_version must be >= {'.'.join(map(str, MIN_TERRAFORM))}")
    if not isinstance(aws, dict) or unquote(aws.get("source", "")) != "hashicorp/aws":
        problems.append(f"{where}: required_providers must name aws = hashicorp/aws")
    else:
        aws_floor = version_floor(unquote(aws.get("version", "")))
        if aws_floor is None or aws_floor[0] < MIN_AWS_PROVIDER:
            problems.append(f"{where}: the aws provider must be required at >= {MIN_AWS_PROVIDER}.0")


def statements_of(document: dict):
    """(statement, conditional) for the static and dynamic statements of a policy document."""
    for statement in as_list(document.get("statement")):
        yield statement, False
    for dynamic in as_list(document.get("dynamic")):
        for (label,), body in labelled(dynamic, 1):
            if label != "statement":
                continue
            for content in as_list(body.get("content")):
                yield content, True


def s3_arn_problem(arn: str) -> str | None:
    """S3 ARNs may end in one "*" after a key path (bucket/* or bucket/prefix*), nothing wider."""
    if ":s3:::" not in arn or "*" not in arn:
        return None
    literal = re.sub(r"\$\{[^}]*\}", "X", arn)
    if literal.count("*") != 1 or not literal.endswith("*"):
        return "a wildcard may only end an object key pattern"
    bucket_and_key = literal.split(":s3:::", 1)[1]
    if "/" not in bucket_and_key:
        return "a wildcard may not stand in a bucket name"
    return None


def check_policies(module: Module, readme: str, problems: list[str]) -> None:
    key_policies = set()
    for address, (_, body) in module.resources.items():
        if address.startswith("aws_kms_key."):
            for expr in interpolations(str(body.get("policy", ""))):
                for kind, name in DATA_RE.findall(expr):
                    key_policies.add(f"{kind}.{name}")

    # Every policy attribute comes from a policy document (checked below), never inline JSON.
    for address, (file_name, body) in module.resources.items():
        for attribute in POLICY_ATTRIBUTES & set(body):
            value = str(body[attribute])
            if not re.fullmatch(r"\$\{data\.aws_iam_policy_document\.[\w-]+(\[[^\]]+\])?\.json\}", value):
                problems.append(
                    f"{module.path / file_name}: {address}.{attribute} must be an aws_iam_policy_document's json"
                )

    for address, (file_name, document) in module.data.items():
        if not address.startswith("aws_iam_policy_document."):
            continue
        is_key_policy = address in key_policies
        for statement, conditional in statements_of(document):
            sid = unquote(statement.get("sid", ""))
            where = f"{module.path / file_name}: {address} statement {sid or '(no sid)'}"
            if not sid:
                problems.append(f"{where}: every statement needs a sid")
            effect = unquote(statement.get("effect", '"Allow"'))
            if effect not in ("Allow", "Deny"):
                problems.append(f"{where}: effect must be a literal Allow or Deny")
                continue
            for forbidden in ("not_actions", "not_resources", "not_principals"):
                if forbidden in statement and effect == "Allow":
                    problems.append(f"{where}: {forbidden} in an Allow statement grants everything else")
            actions = statement.get("actions")
            if not isinstance(actions, list) or not all(is_literal(a) for a in actions):
                problems.append(f"{where}: actions must be a literal list")
                actions = []
            actions = [unquote(a) for a in actions]
            resources = [unquote(r) if is_literal(r) else r for r in as_list(statement.get("resources"))]
            principals = [
                unquote(i)
                for p in as_list(statement.get("principals"))
                for i in as_list(p.get("identifiers"))
            ]
            for arn in resources:
                if isinstance(arn, str):
                    reason = s3_arn_problem(arn)
                    if reason:
                        problems.append(f"{where}: resource {arn}: {reason}")
            if effect == "Deny":
                continue
            if "*" in principals:
                problems.append(f"{where}: an Allow statement may not name the principal *")
            is_account_admin = is_key_policy and all(p.endswith(":root") for p in principals) and principals
            for action in actions:
                if action == "*" or (action.endswith(":*") and not is_account_admin):
                    problems.append(f"{where}: action {action} grants every action")
            if "*" in resources and not is_key_policy:
                if sid not in WILDCARD_RESOURCE_SIDS:
                    problems.append(f'{where}: Resource "*" is not one of the documented exceptions')
                else:
                    if not conditional:
                        problems.append(f'{where}: the Resource "*" exception must be in a dynamic (optional) block')
                    if sid not in readme:
                        problems.append(f'{where}: the Resource "*" exception must be explained in deploy/README.md')

    # ARNs built outside policy documents (locals feeding them) follow the same S3 rule.
    for file_name, parsed in module.files.items():
        for text in strings_in(parsed):
            if ":s3:::" in text:
                for arn in re.findall(r'"(arn:[^"]*:s3:::[^"]*)"', text) or [unquote(text)]:
                    reason = s3_arn_problem(arn)
                    if reason:
                        problems.append(f"{module.path / file_name}: {arn}: {reason}")


def check_forwarder(module: Module, readme: str, problems: list[str]) -> None:
    """Facts about the forwarder module itself (the directory holding aws_lambda_function.this)."""
    where = f"{module.path}"
    for name in module.variables:
        if f"`{name}`" not in readme:
            problems.append(f"{where}: variable {name} is not documented in deploy/README.md")
    for name in module.outputs:
        if f"`{name}`" not in readme:
            problems.append(f"{where}: output {name} is not listed in deploy/README.md")
    _, function = module.resources["aws_lambda_function.this"]
    if unquote(function.get("runtime")) != "provided.al2023":
        problems.append(f"{where}: the function's runtime must be provided.al2023")
    if unquote(function.get("handler")) != "bootstrap":
        problems.append(f"{where}: the function's handler must be bootstrap")

    environment = set()
    for name in ("environment_plain", "environment"):
        for text in strings_in(module.locals.get(name, "")):
            environment |= set(re.findall(r"\bSAWMILL_[A-Z0-9_]+\b", text))
    for missing in sorted(FORWARDER_ENV - environment):
        problems.append(f"{where}: the function's environment does not set {missing}")
    for unknown in sorted(environment - FORWARDER_ENV):
        problems.append(f"{where}: the function's environment sets {unknown}, which the forwarder does not read")
    source = module.path.parent.parent / FORWARDER_SOURCE  # deploy/terraform -> the repository
    if source.is_dir():
        read = set()
        for rs in source.rglob("*.rs"):
            read |= set(re.findall(r'"(SAWMILL_[A-Z0-9_]+)"', rs.read_text(encoding="utf-8")))
        for name in sorted(environment - read):
            problems.append(f"{where}: the function's environment sets {name}, but {source} never reads it")

    api_key = module.variables.get("sawmill_api_key", {})
    if api_key.get("sensitive") is not True:
        problems.append(f"{where}: variable sawmill_api_key must be sensitive")

    for address, (file_name, body) in module.resources.items():
        if not address.startswith("aws_lambda_event_source_mapping."):
            continue
        types = [unquote(t) for t in as_list(body.get("function_response_types"))]
        if types != ["ReportBatchItemFailures"]:
            problems.append(f"{module.path / file_name}: {address} must report batch item failures")
        if "starting_position" in body and body.get("bisect_batch_on_function_error") is not True:
            problems.append(f"{module.path / file_name}: {address} (a stream) must bisect batches on error")


def check_example_api_keys(module: Module, problems: list[str]) -> None:
    spec = module.variables.get("sawmill_api_key")
    if spec is not None and spec.get("sensitive") is not True:
        problems.append(f"{module.path}: variable sawmill_api_key must be sensitive")


@dataclass
class Skip:
    file: Path
    line: int
    check_id: str
    reason: str
    block: str  # "type.name" or "data.type.name"


def find_skips(root: Path) -> tuple[list[Skip], list[str]]:
    """Every #checkov:skip comment, with the block it sits in."""
    skips, problems = [], []
    block_re = re.compile(r'^\s*(resource|data|module)\s+"([^"]+)"(?:\s+"([^"]+)")?\s*\{')
    for tf in sorted(root.rglob("*.tf")):
        if ".terraform" in tf.parts:
            continue
        block = None
        for number, line in enumerate(tf.read_text(encoding="utf-8").splitlines(), 1):
            m = block_re.match(line)
            if m:
                kind, first, second = m.groups()
                block = {"resource": f"{first}.{second}", "data": f"data.{first}.{second}", "module": f"module.{first}"}[kind]
            elif line.startswith("}"):
                block = None
            s = SKIP_RE.search(line.strip())
            if not s:
                continue
            check_id, reason = s.group(1), (s.group(2) or "").strip()
            where = f"{tf}:{number}"
            if not CHECK_ID_RE.match(check_id):
                problems.append(f"{where}: {check_id!r} is not a checkov check id (CKV_..._N)")
            if len(reason.split()) < MIN_REASON_WORDS:
                problems.append(f"{where}: skip of {check_id} needs a real reason after the colon")
            if block is None:
                problems.append(f"{where}: skip of {check_id} must sit inside the block it applies to")
                continue
            skips.append(Skip(tf, number, check_id, reason, block))
    return skips, problems


def check_tree(root: Path, hcl2) -> list[str]:
    problems: list[str] = []
    readme_path = root.parent / "README.md"
    readme = readme_path.read_text(encoding="utf-8") if readme_path.exists() else ""
    if not readme:
        problems.append(f"{readme_path}: missing")

    directories = sorted({tf.parent.resolve() for tf in root.rglob("*.tf") if ".terraform" not in tf.parts})
    if not directories:
        return [f"{root}: no .tf files"]
    modules = {d: load_module(d, problems, hcl2) for d in directories}

    forwarder = [m for m in modules.values() if "aws_lambda_function.this" in m.resources]
    if len(forwarder) != 1:
        problems.append(f"{root}: expected exactly one module defining aws_lambda_function.this")
    callers = [m for m in modules.values() if m.modules]
    if not callers:
        problems.append(f"{root}: no example calls the module")

    for module in modules.values():
        check_variables(module, problems)
        check_references(module, modules, problems)
        check_module_calls(module, modules, problems)
        check_versions(module, problems)
        check_policies(module, readme, problems)
        check_example_api_keys(module, problems)
    for module in forwarder:
        check_forwarder(module, readme, problems)

    _, skip_problems = find_skips(root)
    problems += skip_problems
    files = sum(len(m.files) for m in modules.values())
    if not problems:
        print(
            f"check_deploy: {files} .tf files in {len(modules)} modules parse; "
            f"{sum(len(m.variables) for m in modules.values())} variables, "
            f"{sum(len(m.resources) for m in modules.values())} resources, "
            f"{sum(1 for m in modules.values() for a in m.data if a.startswith('aws_iam_policy_document.'))} policy documents checked"
        )
    return problems


# --------------------------------------------------------------------------------------------
# checkov's report
# --------------------------------------------------------------------------------------------


def same_file(a: Path, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def resource_matches(resource: str, block: str) -> bool:
    """checkov names a resource or data source "type.name", inside a module call
    "module.NAME.type.name", with [index] suffixes for count and for_each."""
    plain = re.sub(r"\[[^\]]*\]", "", resource)
    candidates = {block, block.removeprefix("data.")}
    return any(plain == c or plain.endswith("." + c) for c in candidates)


def judge_checkov(report_path: Path, root: Path) -> list[str]:
    problems: list[str] = []
    text = report_path.read_text(encoding="utf-8").strip()
    reports = json.loads(text) if text else []
    if isinstance(reports, dict):
        reports = [reports]
    results = {"passed_checks": [], "failed_checks": [], "skipped_checks": [], "parsing_errors": []}
    for report in reports:
        if report.get("check_type", "terraform") != "terraform":
            continue
        # With nothing to check, checkov reports a bare summary without "results".
        for key in results:
            results[key] += report.get("results", {}).get(key, [])
        if report.get("summary", {}).get("parsing_errors", 0) and not report.get("results", {}).get("parsing_errors"):
            problems.append(f"checkov could not parse {report['summary']['parsing_errors']} file(s)")
    if not results["passed_checks"] and not results["failed_checks"] and not results["skipped_checks"]:
        problems.append(f"{report_path}: checkov ran no check (is {root} empty or unparsable?)")
    for error in results["parsing_errors"]:
        problems.append(f"checkov could not parse {error}")
    for check in results["failed_checks"]:
        problems.append(
            f"checkov {check['check_id']} failed: {check.get('check_name', '')} "
            f"({check.get('resource')}, {check.get('file_path')}:{check.get('file_line_range', ['?'])[0]})"
        )

    skips, skip_problems = find_skips(root)
    problems += skip_problems
    used = set()
    for check in results["skipped_checks"]:
        file_path = check.get("file_abs_path") or str(root / check.get("file_path", "").lstrip("/"))
        resource = check.get("resource", "")
        matched = False
        for index, skip in enumerate(skips):
            if skip.check_id != check["check_id"] or not same_file(skip.file, file_path):
                continue
            if resource_matches(resource, skip.block):
                used.add(index)
                matched = True
        if not matched:
            problems.append(
                f"checkov skipped {check['check_id']} on {resource} ({file_path}) without a skip comment found in the source"
            )
    for index, skip in enumerate(skips):
        if index not in used:
            problems.append(
                f"{skip.file}:{skip.line}: skip of {skip.check_id} on {skip.block} suppresses nothing checkov ran: remove it"
            )

    print(
        f"checkov: {len(results['passed_checks'])} checks passed, {len(results['failed_checks'])} failed, "
        f"{len(results['skipped_checks'])} skipped (each with its reason below)"
    )
    for index, skip in enumerate(skips):
        if index in used:
            print(f"  skipped {skip.check_id} on {skip.block}: {skip.reason}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "hcl":
        import hcl2  # python-hcl2, installed by scripts/check-deploy

        problems = check_tree(Path(argv[2]), hcl2)
    elif len(argv) == 4 and argv[1] == "checkov":
        problems = judge_checkov(Path(argv[2]), Path(argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"check_deploy: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
