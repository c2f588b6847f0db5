//! API keys end to end: who may call which endpoint (scopes, tenants, operator keys), that
//! tenants see only their own events (search, histogram, archive objects), keys created and
//! revoked while the server runs, the audit log and refusal metrics, the refusal to serve
//! without keys on a non-loopback address, and HTTPS.

use crate::common;

use common::{binary, run_sawmill, shorten, Checks, Server, FAST_CONFIG};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ----- keys -----

/// A key made by `sawmill keys create`.
#[derive(Clone, Debug)]
struct Key {
    id: String,
    key: String,
}

impl Key {
    /// The part after `smk_<id>_`: what must never be written anywhere.
    fn secret(&self) -> &str {
        &self.key[format!("smk_{}_", self.id).len()..]
    }

    fn bearer(&self) -> Cred {
        Cred::Bearer(self.key.clone())
    }
}

/// `sawmill keys create` for `tenant` (`None`: `--all-tenants`) with `scopes`.
fn create_key(data_dir: &Path, tenant: Option<&str>, scopes: &[&str], name: &str) -> Key {
    let dir = data_dir.to_str().expect("utf-8 path");
    let mut args = vec!["keys", "create"];
    match tenant {
        Some(t) => args.extend(["--tenant", t]),
        None => args.push("--all-tenants"),
    }
    for s in scopes {
        args.extend(["--scope", s]);
    }
    args.extend(["--name", name, "--data-dir", dir]);
    let out = run_sawmill(&args, None, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "sawmill {args:?} failed: {}\n{}",
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    let key = lines.last().expect("keys create printed nothing").trim();
    let id = lines[0]
        .strip_prefix("created key ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("keys create: no id on the first line:\n{}", out.stdout));
    assert_eq!(id.len(), 12, "key id {id:?} is not 12 hex digits");
    assert!(
        id.bytes().all(|b| b.is_ascii_hexdigit()),
        "key id {id:?} is not hex"
    );
    assert!(
        key.starts_with(&format!("smk_{id}_")) && key.len() > id.len() + 20,
        "keys create: last line {key:?} is not a key smk_{id}_<secret>"
    );
    Key {
        id: id.to_string(),
        key: key.to_string(),
    }
}

fn revoke_key(data_dir: &Path, id: &str) -> String {
    let dir = data_dir.to_str().expect("utf-8 path");
    let out = run_sawmill(
        &["keys", "revoke", id, "--data-dir", dir],
        None,
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "keys revoke {id} failed: {}\n{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// `sawmill keys list --json`.
fn list_keys(data_dir: &Path) -> Vec<Value> {
    let dir = data_dir.to_str().expect("utf-8 path");
    let out = run_sawmill(
        &["keys", "list", "--json", "--data-dir", dir],
        None,
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "keys list failed: {}", out.stderr);
    let rows: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("keys list --json is not JSON ({e}):\n{}", out.stdout));
    rows.as_array()
        .unwrap_or_else(|| panic!("keys list --json is not an array:\n{}", out.stdout))
        .clone()
}

// ----- requests -----

/// The credentials a request carries.
#[derive(Clone, Debug)]
enum Cred {
    None,
    Bearer(String),
    /// HTTP Basic: user name and password (the key).
    Basic(String, String),
    /// `X-Amz-Firehose-Access-Key`.
    Firehose(String),
    /// An `Authorization` header sent as is.
    Authorization(String),
}

/// A server's answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    text: String,
    json: Value,
    www_authenticate: Option<String>,
}

/// One server as a client sees it: its base URL and an HTTP client.
struct Api {
    base: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn of(server: &Server) -> Api {
        Api {
            base: server.url.clone(),
            http: server.http.clone(),
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        cred: &Cred,
        tenant: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        self.call_with(method, path, cred, tenant, &[], body)
    }

    /// [`Api::call`] with extra headers.
    fn call_with(
        &self,
        method: &str,
        path: &str,
        cred: &Cred,
        tenant: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match cred {
            Cred::None => req,
            Cred::Bearer(k) => req.bearer_auth(k),
            Cred::Basic(user, password) => req.basic_auth(user, Some(password)),
            Cred::Firehose(k) => req.header("x-amz-firehose-access-key", k),
            Cred::Authorization(v) => req.header("authorization", v),
        };
        if let Some(t) = tenant {
            req = req.header("x-sawmill-tenant", t);
        }
        if let Some(b) = body {
            let content_type = if path.starts_with("/api/v1/ingest") {
                "application/x-ndjson"
            } else {
                "application/json"
            };
            req = req.header("content-type", content_type).body(b.to_string());
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("{method} {path}: request failed: {e}"));
        let status = resp.status().as_u16();
        let www_authenticate = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("<not ASCII>").to_string());
        let text = resp.text().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            text,
            json,
            www_authenticate,
        }
    }

    /// Ingests NDJSON `body` and waits until it is searchable; asserts success.
    fn ingest(&self, cred: &Cred, tenant: Option<&str>, body: &str) -> Value {
        let a = self.call(
            "POST",
            "/api/v1/ingest?refresh=wait_for",
            cred,
            tenant,
            Some(body),
        );
        assert_eq!(a.status, 200, "ingest with {cred:?}: {}", a.text);
        a.json
    }

    /// Every hit of `q` over all time (at most 10000).
    fn hits(&self, cred: &Cred, tenant: Option<&str>, q: &str) -> Vec<Value> {
        let a = self.call(
            "POST",
            "/api/v1/search",
            cred,
            tenant,
            Some(&json!({"q": q, "start": "0", "end": "now+1d", "limit": 10000}).to_string()),
        );
        assert_eq!(a.status, 200, "search {q:?} as {tenant:?}: {}", a.text);
        a.json["hits"].as_array().expect("hits").clone()
    }

    /// The `total` of `GET /api/v1/search` for `q` over all time.
    fn total(&self, cred: &Cred, tenant: Option<&str>, q: &str) -> u64 {
        let path = format!(
            "/api/v1/search?q={}&start=0&end=now%2B1d&limit=0",
            encode(q)
        );
        let a = self.call("GET", &path, cred, tenant, None);
        assert_eq!(a.status, 200, "search {q:?} as {tenant:?}: {}", a.text);
        a.json["total"].as_u64().expect("total")
    }

    /// The sum of the histogram buckets of `q` over the last day.
    fn histogram_total(&self, cred: &Cred, tenant: Option<&str>, q: &str) -> u64 {
        let path = format!(
            "/api/v1/histogram?q={}&start=now-1d&end=now%2B1h",
            encode(q)
        );
        let a = self.call("GET", &path, cred, tenant, None);
        assert_eq!(a.status, 200, "histogram {q:?} as {tenant:?}: {}", a.text);
        a.json["buckets"]
            .as_array()
            .expect("buckets")
            .iter()
            .map(|b| b["count"].as_u64().expect("count"))
            .sum()
    }
}

/// Percent-encodes a query parameter value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the sample of `metric` whose labels are exactly `labels` (like
/// `{action="search"}`); `None` when absent.
fn sample(metrics: &str, metric: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{metric}{labels} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

// ----- 1. who may call what -----

/// What an endpoint needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    Open,
    /// This scope on a key of the tenant acted for.
    Tenant(&'static str),
    /// `admin` on an operator key.
    Operator,
}

struct Endpoint {
    method: &'static str,
    path: &'static str,
    need: Need,
    /// The answer to an authorized caller (a missing id is the handler's 404).
    normal: u16,
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "POST",
        path: "/api/v1/ingest",
        need: Need::Tenant("ingest"),
        normal: 200,
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/firehose",
        need: Need::Tenant("ingest"),
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/api/v1/search?q=*&start=0&end=now&limit=1",
        need: Need::Tenant("search"),
        normal: 200,
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/search",
        need: Need::Tenant("search"),
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/api/v1/histogram?q=*&start=now-1h&end=now",
        need: Need::Tenant("search"),
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/api/v1/alerts",
        need: Need::Tenant("search"),
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/api/v1/silences",
        need: Need::Tenant("search"),
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/api/v1/archive/restores",
        need: Need::Tenant("search"),
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/api/v1/archive/restores/r-no-such-restore",
        need: Need::Tenant("search"),
        normal: 404,
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/silences",
        need: Need::Tenant("admin"),
        normal: 201,
    },
    Endpoint {
        method: "DELETE",
        path: "/api/v1/silences/s-no-such-silence",
        need: Need::Tenant("admin"),
        normal: 404,
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/archive/restore",
        need: Need::Tenant("admin"),
        normal: 202,
    },
    Endpoint {
        method: "DELETE",
        path: "/api/v1/archive/restores/r-no-such-restore",
        need: Need::Tenant("admin"),
        normal: 404,
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/admin/flush",
        need: Need::Operator,
        normal: 200,
    },
    Endpoint {
        method: "POST",
        path: "/api/v1/alerts/reload",
        need: Need::Operator,
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/metrics",
        need: Need::Operator,
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/healthz",
        need: Need::Open,
        normal: 200,
    },
    Endpoint {
        method: "GET",
        path: "/readyz",
        need: Need::Open,
        normal: 200,
    },
];

impl Endpoint {
    /// The request body; `cell` names the matrix cell, so that what a request created can be
    /// traced back to it.
    fn body(&self, cell: &str) -> Option<String> {
        match (self.method, self.path) {
            ("POST", "/api/v1/ingest") => {
                Some(json!({"message": "matrix event", "cell": cell}).to_string() + "\n")
            }
            // the same event as a Firehose delivery (its cells land in the same sets)
            ("POST", "/api/v1/firehose") => {
                use base64::Engine;
                let record = json!({"message": "matrix event", "cell": cell}).to_string();
                let data = base64::engine::general_purpose::STANDARD.encode(record);
                Some(
                    json!({"requestId": format!("matrix-{cell}"), "timestamp": 0,
                           "records": [{"data": data}]})
                    .to_string(),
                )
            }
            ("POST", "/api/v1/search") => {
                Some(json!({"q": "*", "start": "0", "end": "now", "limit": 1}).to_string())
            }
            ("POST", "/api/v1/silences") => Some(
                json!({"matchers": ["rule=matrix"], "duration": "1h",
                       "created_by": "auth-test", "comment": cell})
                .to_string(),
            ),
            ("POST", "/api/v1/archive/restore") => {
                Some(json!({"start": "now-1h", "query": cell}).to_string())
            }
            _ => None,
        }
    }
}

/// The columns of the matrix: who calls.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Col {
    NoKey,
    /// `Bearer` with something that is not a sawmill key.
    Malformed,
    /// A well-formed key whose id does not exist.
    UnknownId,
    /// An existing key's id with a wrong secret.
    WrongSecret,
    Revoked,
    /// A key of the right tenant with every scope but the one needed (operator endpoints:
    /// an operator key without `admin`).
    WrongScope,
    /// A tenant-`a` key with every scope, asking for tenant `b`.
    OtherTenant,
    /// A tenant-`a` key with every scope, naming its own tenant in the header.
    OwnTenantHeader,
    /// A tenant-`a` key with every scope.
    TenantKey,
    /// A key with only the scope needed (operator endpoints: an operator key with `admin`).
    RightKey,
    /// An operator key with every scope, acting for tenant `b`.
    Operator,
}

const COLS: [Col; 11] = [
    Col::NoKey,
    Col::Malformed,
    Col::UnknownId,
    Col::WrongSecret,
    Col::Revoked,
    Col::WrongScope,
    Col::OtherTenant,
    Col::OwnTenantHeader,
    Col::TenantKey,
    Col::RightKey,
    Col::Operator,
];

/// The keys of the matrix server.
struct MatrixKeys {
    a_ingest: Key,
    a_search: Key,
    a_admin: Key,
    a_no_ingest: Key,
    a_no_search: Key,
    a_no_admin: Key,
    a_all: Key,
    op_admin: Key,
    op_no_admin: Key,
    op_all: Key,
    revoked: Key,
}

impl MatrixKeys {
    fn create(data: &Path) -> MatrixKeys {
        let all = ["ingest", "search", "admin"];
        let keys = MatrixKeys {
            a_ingest: create_key(data, Some("a"), &["ingest"], "a-ingest"),
            a_search: create_key(data, Some("a"), &["search"], "a-search"),
            a_admin: create_key(data, Some("a"), &["admin"], "a-admin"),
            a_no_ingest: create_key(data, Some("a"), &["search", "admin"], "a-no-ingest"),
            a_no_search: create_key(data, Some("a"), &["ingest", "admin"], "a-no-search"),
            a_no_admin: create_key(data, Some("a"), &["ingest", "search"], "a-no-admin"),
            a_all: create_key(data, Some("a"), &all, "a-all"),
            op_admin: create_key(data, None, &["admin"], "op-admin"),
            op_no_admin: create_key(data, None, &["ingest", "search"], "op-no-admin"),
            op_all: create_key(data, None, &all, "op-all"),
            revoked: create_key(data, Some("a"), &all, "revoked"),
        };
        revoke_key(data, &keys.revoked.id);
        keys
    }

    /// (credentials, X-Sawmill-Tenant, expected status) of one cell.
    fn cell(&self, col: Col, ep: &Endpoint) -> (Cred, Option<&'static str>, u16) {
        let need = ep.need;
        let scoped = |ingest: &Key, search: &Key, admin: &Key, operator: &Key| match need {
            Need::Tenant("ingest") => ingest.bearer(),
            Need::Tenant("search") => search.bearer(),
            Need::Tenant(_) => admin.bearer(),
            Need::Operator | Need::Open => operator.bearer(),
        };
        let normal = ep.normal;
        let tenant_only = if matches!(need, Need::Operator) {
            403
        } else {
            normal
        };
        let refused = |status: u16| if need == Need::Open { normal } else { status };
        match col {
            Col::NoKey => (Cred::None, None, refused(401)),
            Col::Malformed => (Cred::Bearer("not-a-sawmill-key".into()), None, refused(401)),
            Col::UnknownId => {
                let key = format!("smk_000000000000_{}", self.a_all.secret());
                (Cred::Bearer(key), None, refused(401))
            }
            Col::WrongSecret => {
                let key = format!("smk_{}_{}", self.a_all.id, "A".repeat(43));
                (Cred::Bearer(key), None, refused(401))
            }
            Col::Revoked => (self.revoked.bearer(), None, refused(401)),
            Col::WrongScope => (
                scoped(
                    &self.a_no_ingest,
                    &self.a_no_search,
                    &self.a_no_admin,
                    &self.op_no_admin,
                ),
                None,
                refused(403),
            ),
            Col::OtherTenant => (self.a_all.bearer(), Some("b"), refused(403)),
            Col::OwnTenantHeader => (self.a_all.bearer(), Some("a"), tenant_only),
            Col::TenantKey => (self.a_all.bearer(), None, tenant_only),
            Col::RightKey => (
                scoped(
                    &self.a_ingest,
                    &self.a_search,
                    &self.a_admin,
                    &self.op_admin,
                ),
                None,
                normal,
            ),
            Col::Operator => (self.op_all.bearer(), Some("b"), normal),
        }
    }
}

#[test]
fn every_endpoint_answers_by_key_scope_and_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keys = MatrixKeys::create(&data);
    let server = Server::start(dir.path());
    let api = Api::of(&server);

    let mut checks = Checks::default();
    // (cell, body) of every 401
    let mut unauthorized: Vec<(String, String)> = Vec::new();
    for ep in ENDPOINTS {
        for col in COLS {
            let (cred, tenant, want) = keys.cell(col, ep);
            let label = format!("{} {} × {col:?}", ep.method, ep.path);
            let body = ep.body(&format!("{col:?}"));
            let mut got = api.call(ep.method, ep.path, &cred, tenant, body.as_deref());
            // at most two restores run at once: a busy answer (nothing started) is retried
            let deadline = Instant::now() + Duration::from_secs(20);
            while ep.path == "/api/v1/archive/restore"
                && got.status == 503
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(100));
                got = api.call(ep.method, ep.path, &cred, tenant, body.as_deref());
            }
            checks.eq(
                &format!("{label} (answer {})", shorten(got.text.clone())),
                got.status,
                want,
            );
            match got.status {
                401 => {
                    checks.eq(
                        &format!("{label}: WWW-Authenticate"),
                        got.www_authenticate.as_deref(),
                        Some("Bearer realm=\"sawmill\""),
                    );
                    // Firehose answers in its own shape, with the same message
                    let text = if ep.path == "/api/v1/firehose" {
                        json!({"error": got.json["errorMessage"]}).to_string()
                    } else {
                        got.text.clone()
                    };
                    unauthorized.push((label.clone(), text));
                }
                403 => {
                    let field = if ep.path == "/api/v1/firehose" {
                        "errorMessage"
                    } else {
                        "error"
                    };
                    checks.truth(
                        &format!("{label}: 403 without a JSON {field}: {}", got.text),
                        got.json[field].as_str().is_some_and(|e| !e.is_empty()),
                    )
                }
                404 => checks.truth(
                    &format!(
                        "{label}: 404 from the router, not the handler: {}",
                        got.text
                    ),
                    !got.text.contains("no such endpoint"),
                ),
                _ => {}
            }
        }
    }

    // the other ways to send a key, on ingest
    let ingest = |cell: &str, cred: Cred| {
        let body = json!({"message": "matrix event", "cell": cell}).to_string() + "\n";
        let got = api.call("POST", "/api/v1/ingest", &cred, None, Some(&body));
        (format!("POST /api/v1/ingest × {cell}"), got)
    };
    let basic = |user: &str, key: &str| Cred::Basic(user.into(), key.into());
    let wrong_secret = format!("smk_{}_{}", keys.a_ingest.id, "B".repeat(43));
    let ways = [
        ("Basic", basic("fluent-bit", &keys.a_ingest.key), 200),
        ("BasicEmptyUser", basic("", &keys.a_ingest.key), 200),
        ("Firehose", Cred::Firehose(keys.a_ingest.key.clone()), 200),
        ("BasicWrongPassword", basic("fluent-bit", "hunter2"), 401),
        ("BasicWrongSecret", basic("fluent-bit", &wrong_secret), 401),
        ("BasicRevoked", basic("x", &keys.revoked.key), 401),
        (
            "BasicNotBase64",
            Cred::Authorization("Basic !!!not-base64".into()),
            401,
        ),
        ("FirehoseUnknown", Cred::Firehose(wrong_secret.clone()), 401),
        ("BasicWrongScope", basic("x", &keys.a_search.key), 403),
        (
            "FirehoseWrongScope",
            Cred::Firehose(keys.a_search.key.clone()),
            403,
        ),
    ];
    for (cell, cred, want) in ways {
        let (label, got) = ingest(cell, cred);
        checks.eq(
            &format!("{label} (answer {})", shorten(got.text.clone())),
            got.status,
            want,
        );
        if got.status == 401 {
            checks.eq(
                &format!("{label}: WWW-Authenticate"),
                got.www_authenticate.as_deref(),
                Some("Bearer realm=\"sawmill\""),
            );
            unauthorized.push((label, got.text));
        }
    }

    // a caller without a valid key is refused before anything else of the request is looked
    // at, also when it names a tenant that cannot exist
    let unknown = Cred::Bearer(format!("smk_000000000000_{}", keys.a_all.secret()));
    for (name, cred) in [("no key", Cred::None), ("unknown key", unknown)] {
        let label = format!("GET /api/v1/search × {name} with X-Sawmill-Tenant: Not/A-Tenant");
        let got = api.call(
            "GET",
            "/api/v1/search?q=*",
            &cred,
            Some("Not/A-Tenant"),
            None,
        );
        checks.eq(&format!("{label} (answer {})", got.text), got.status, 401);
        if got.status == 401 {
            unauthorized.push((label, got.text));
        }
    }

    // every 401 says the same, so that it tells nothing about which keys exist
    let (first_label, first_body) = unauthorized.first().cloned().expect("some 401s");
    let error = serde_json::from_str::<Value>(&first_body).unwrap_or(Value::Null);
    checks.truth(
        &format!("{first_label}: the 401 body is not a JSON error: {first_body}"),
        error["error"].as_str().is_some_and(|e| !e.is_empty()),
    );
    for (label, body) in &unauthorized {
        checks.eq(
            &format!("{label}: 401 body differs from that of {first_label}"),
            body,
            &first_body,
        );
    }

    // refused requests changed nothing: only authorized ingests and silences exist
    let flushed = api.call(
        "POST",
        "/api/v1/admin/flush",
        &keys.op_all.bearer(),
        None,
        None,
    );
    assert_eq!(flushed.status, 200, "flush: {}", flushed.text);
    let op = keys.op_all.bearer();
    let cells_of = |tenant: &str| -> BTreeSet<String> {
        api.hits(&op, Some(tenant), "message:matrix")
            .iter()
            .map(|h| h["cell"].as_str().unwrap_or("<no cell>").to_string())
            .collect()
    };
    let set =
        |cells: &[&str]| -> BTreeSet<String> { cells.iter().map(|c| c.to_string()).collect() };
    checks.eq(
        "matrix events of tenant a",
        cells_of("a"),
        set(&[
            "Basic",
            "BasicEmptyUser",
            "Firehose",
            "OwnTenantHeader",
            "RightKey",
            "TenantKey",
        ]),
    );
    checks.eq(
        "matrix events of tenant b",
        cells_of("b"),
        set(&["Operator"]),
    );
    checks.eq(
        "matrix events of tenant default",
        cells_of("default"),
        set(&[]),
    );
    let silences = api.call("GET", "/api/v1/silences", &op, None, None);
    assert_eq!(silences.status, 200, "{}", silences.text);
    let silences: BTreeSet<String> = silences.json["silences"]
        .as_array()
        .expect("silences")
        .iter()
        .map(|s| {
            format!(
                "{} by tenant {}",
                s["comment"].as_str().unwrap_or("?"),
                s["tenant"]
            )
        })
        .collect();
    checks.eq(
        "silences (operators see all)",
        silences,
        set(&[
            "Operator by tenant null",
            "OwnTenantHeader by tenant \"a\"",
            "RightKey by tenant \"a\"",
            "TenantKey by tenant \"a\"",
        ]),
    );
    let restores_of = |cred: &Cred, tenant: Option<&str>| -> BTreeSet<String> {
        let got = api.call("GET", "/api/v1/archive/restores", cred, tenant, None);
        assert_eq!(got.status, 200, "{}", got.text);
        got.json["restores"]
            .as_array()
            .expect("restores")
            .iter()
            .map(|r| format!("{} for {}", r["query"].as_str().unwrap_or("?"), r["tenant"]))
            .collect()
    };
    checks.eq(
        "restores tenant a sees",
        restores_of(&keys.a_search.bearer(), None),
        set(&[
            "OwnTenantHeader for \"a\"",
            "RightKey for \"a\"",
            "TenantKey for \"a\"",
        ]),
    );
    checks.eq(
        "restores the operator sees for tenant b",
        restores_of(&op, Some("b")),
        set(&["Operator for \"b\""]),
    );

    // the audit log holds exactly the authorized state changes, with their key and tenant
    let actor = |k: &Key| format!("key:{}", k.id);
    let a_all = actor(&keys.a_all);
    let a_admin = actor(&keys.a_admin);
    let op_all = actor(&keys.op_all);
    let op_admin = actor(&keys.op_admin);
    let mut want: Vec<String> = Vec::new();
    for action in [
        "silence.create",
        "silence.delete",
        "restore.start",
        "restore.delete",
    ] {
        for (who, tenant) in [
            (&a_all, "a"),
            (&a_all, "a"),
            (&a_admin, "a"),
            (&op_all, "b"),
        ] {
            want.push(format!("{action} by {who} for {tenant}"));
        }
    }
    for action in ["flush", "alerts.reload"] {
        for (who, tenant) in [(&op_admin, "default"), (&op_all, "b")] {
            want.push(format!("{action} by {who} for {tenant}"));
        }
    }
    want.push(format!("flush by {op_all} for default"));
    want.sort();
    let mut got: Vec<String> = audit_lines(&data)
        .iter()
        .filter(|l| {
            want.iter()
                .any(|w| w.starts_with(&format!("{} ", l["action"].as_str().unwrap_or(""))))
        })
        // a restore refused as busy (retried above) started nothing
        .filter(|l| !(l["action"] == "restore.start" && l["status"] != 202))
        .map(|l| {
            format!(
                "{} by {} for {}",
                l["action"].as_str().unwrap_or("?"),
                l["actor"].as_str().unwrap_or("?"),
                l["tenant"].as_str().unwrap_or("?")
            )
        })
        .collect();
    got.sort();
    checks.eq("audited state changes", got, want);

    // an unsupported Authorization scheme is refused too
    let digest = api.call(
        "GET",
        "/api/v1/alerts",
        &Cred::Authorization("Digest username=\"x\"".into()),
        None,
        None,
    );
    checks.eq(
        &format!("Digest scheme (answer {})", digest.text),
        digest.status,
        401,
    );
    checks.eq(
        "Digest scheme: WWW-Authenticate",
        digest.www_authenticate.as_deref(),
        Some("Bearer realm=\"sawmill\""),
    );
    checks.finish();
}

// ----- 2. tenants see only their own events -----

fn events(who: &str, n: usize, extra: Value) -> String {
    (0..n)
        .map(|i| {
            let mut e =
                json!({"message": format!("sample event {i} of {who}"), "who": who, "i": i});
            if let (Some(obj), Value::Object(more)) = (e.as_object_mut(), extra.clone()) {
                obj.extend(more);
            }
            e.to_string() + "\n"
        })
        .collect()
}

#[test]
fn tenants_see_and_archive_only_their_own_events() {
    const N_A: u64 = 7;
    const N_B: u64 = 4;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let a = create_key(&data, Some("a"), &["ingest", "search", "admin"], "a").bearer();
    let b = create_key(&data, Some("b"), &["ingest", "search", "admin"], "b").bearer();
    let op = create_key(&data, None, &["ingest", "search", "admin"], "op").bearer();
    let server = Server::start(dir.path());
    let api = Api::of(&server);

    // A's events claim to be B's in their body: that is just an attribute. Both send the
    // same Idempotency-Key: B must not be answered with A's request.
    let keyed_ingest = |cred: &Cred, body: &str| {
        let got = api.call_with(
            "POST",
            "/api/v1/ingest?refresh=wait_for",
            cred,
            None,
            &[("idempotency-key", "same-key-in-two-tenants")],
            Some(body),
        );
        assert_eq!(got.status, 200, "ingest: {}", got.text);
        got.json
    };
    let answer = keyed_ingest(&a, &events("a", N_A as usize, json!({"tenant": "b"})));
    assert_eq!(answer["accepted"], N_A, "{answer}");
    let answer = keyed_ingest(&b, &events("b", N_B as usize, json!({})));
    assert_eq!(
        answer["accepted"], N_B,
        "B's ingest with the Idempotency-Key A used first: {answer}"
    );

    let mut checks = Checks::default();
    for (name, cred, own, other, n) in [("A", &a, "a", "b", N_A), ("B", &b, "b", "a", N_B)] {
        checks.eq(
            &format!("{name}: search total of *"),
            api.total(cred, None, "*"),
            n,
        );
        checks.eq(
            &format!("{name}: search total of message:sample"),
            api.total(cred, None, "message:sample"),
            n,
        );
        checks.eq(
            &format!("{name}: search total of who:{other}"),
            api.total(cred, None, &format!("who:{other}")),
            0,
        );
        checks.eq(
            &format!("{name}: histogram total of *"),
            api.histogram_total(cred, None, "*"),
            n,
        );
        checks.eq(
            &format!("{name}: histogram total of who:{other}"),
            api.histogram_total(cred, None, &format!("who:{other}")),
            0,
        );
        let hits = api.hits(cred, None, "*");
        let whos: BTreeSet<&str> = hits
            .iter()
            .map(|h| h["who"].as_str().unwrap_or("?"))
            .collect();
        checks.eq(
            &format!("{name}: who of its hits"),
            whos,
            BTreeSet::from([own]),
        );
    }
    // the tenant comes from the key: a query cannot name one, not even its own
    for (name, cred, q) in [
        ("A", &a, "tenant:b"),
        ("A", &a, "tenant:a"),
        ("B", &b, "who:a OR tenant:a"),
    ] {
        let got = api.call(
            "GET",
            &format!("/api/v1/search?q={}&start=0&end=now", encode(q)),
            cred,
            None,
            None,
        );
        checks.eq(
            &format!("{name}: search {q:?} (answer {})", got.text),
            got.status,
            400,
        );
    }
    // the body's "tenant" stays an attribute of A's events
    let a_hits = api.hits(&a, None, "*");
    checks.truth(
        &format!(
            "A's hits keep their body field \"tenant\":\"b\": {}",
            shorten(Value::Array(a_hits.clone()).to_string())
        ),
        a_hits.iter().all(|h| h["tenant"] == "b"),
    );
    // an operator picks the tenant with the header; no header is tenant default
    for (tenant, n) in [(Some("a"), N_A), (Some("b"), N_B), (None, 0)] {
        checks.eq(
            &format!("operator search total of * for {tenant:?}"),
            api.total(&op, tenant, "*"),
            n,
        );
        checks.eq(
            &format!("operator histogram total of * for {tenant:?}"),
            api.histogram_total(&op, tenant, "*"),
            n,
        );
    }
    checks.eq(
        "operator: who:a in tenant b",
        api.total(&op, Some("b"), "who:a"),
        0,
    );

    // silences: B neither sees nor deletes A's
    let silence = json!({"matchers": ["rule=isolation"], "duration": "1h", "created_by": "a"});
    let created = api.call(
        "POST",
        "/api/v1/silences",
        &a,
        None,
        Some(&silence.to_string()),
    );
    assert_eq!(created.status, 201, "A's silence: {}", created.text);
    let silence_id = created.json["id"].as_str().expect("silence id").to_string();
    let silence_ids = |cred: &Cred| -> Vec<String> {
        let got = api.call("GET", "/api/v1/silences", cred, None, None);
        assert_eq!(got.status, 200, "{}", got.text);
        got.json["silences"]
            .as_array()
            .expect("silences")
            .iter()
            .map(|s| s["id"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    checks.eq(
        "silences A lists",
        silence_ids(&a),
        vec![silence_id.clone()],
    );
    checks.eq("silences B lists", silence_ids(&b), vec![]);
    checks.eq(
        "silences the operator lists",
        silence_ids(&op),
        vec![silence_id.clone()],
    );
    let path = format!("/api/v1/silences/{silence_id}");
    let got = api.call("DELETE", &path, &b, None, None);
    checks.eq(
        &format!("B deletes A's silence (answer {})", got.text),
        got.status,
        404,
    );
    checks.eq(
        "silences A lists after B's delete",
        silence_ids(&a),
        vec![silence_id.clone()],
    );

    // restores: B neither sees nor deletes A's, and A's reads A's objects only
    let flushed = api.call("POST", "/api/v1/admin/flush", &op, None, None);
    assert_eq!(flushed.status, 200, "flush: {}", flushed.text);
    let started = api.call(
        "POST",
        "/api/v1/archive/restore",
        &a,
        None,
        Some(&json!({"start": "now-1h", "end": "now+1m"}).to_string()),
    );
    assert_eq!(started.status, 202, "A's restore: {}", started.text);
    let restore_id = started.json["id"].as_str().expect("restore id").to_string();
    let path = format!("/api/v1/archive/restores/{restore_id}");
    for method in ["GET", "DELETE"] {
        let got = api.call(method, &path, &b, None, None);
        checks.eq(
            &format!("B: {method} A's restore (answer {})", got.text),
            got.status,
            404,
        );
    }
    let listed = api.call("GET", "/api/v1/archive/restores", &b, None, None);
    checks.eq(
        "restores B lists",
        listed.json["restores"].as_array().map(Vec::len),
        Some(0),
    );
    let done = common::poll(Duration::from_secs(30), "A's restore to finish", || {
        let got = api.call("GET", &path, &a, None, None);
        assert_eq!(got.status, 200, "A reads its restore: {}", got.text);
        (got.json["state"] != "running").then_some(got.json)
    });
    checks.eq("A's restore state", done["state"].as_str(), Some("done"));
    let seen: u64 = ["events", "events_already_hot", "events_already_restored"]
        .iter()
        .map(|k| done[k].as_u64().unwrap_or(0))
        .sum();
    checks.eq(
        &format!("events A's restore found in the archive ({done})"),
        seen,
        N_A,
    );

    // archive objects: A's events under tenant=a only, B's under tenant=b only
    let flushed = api.call("POST", "/api/v1/admin/flush", &op, None, None);
    assert_eq!(flushed.status, 200, "flush: {}", flushed.text);
    let objects = common::archive_objects(&data.join("archive"));
    assert!(
        !objects.is_empty(),
        "no archive objects under {} after flush ({})",
        data.join("archive").display(),
        flushed.text
    );
    let mut per_tenant: std::collections::BTreeMap<String, (u64, BTreeSet<String>)> =
        Default::default();
    for (key, lines) in &objects {
        let parts: Vec<&str> = key.split('/').collect();
        let tenant = match parts.as_slice() {
            ["logs", "v1", t, dt, hour, _]
                if dt.starts_with("dt=") && hour.starts_with("hour=") =>
            {
                t.strip_prefix("tenant=").unwrap_or("?")
            }
            _ => {
                checks.truth(
                    &format!("archive object {key} is not at logs/v1/tenant=<t>/dt=…/hour=…/…"),
                    false,
                );
                continue;
            }
        };
        let entry = per_tenant.entry(tenant.to_string()).or_default();
        entry.0 += lines.len() as u64;
        for l in lines {
            entry.1.insert(l["who"].as_str().unwrap_or("?").to_string());
        }
    }
    let want: std::collections::BTreeMap<String, (u64, BTreeSet<String>)> = [
        ("a".to_string(), (N_A, BTreeSet::from(["a".to_string()]))),
        ("b".to_string(), (N_B, BTreeSet::from(["b".to_string()]))),
    ]
    .into();
    checks.eq(
        "archive: (events, who) per tenant= folder",
        per_tenant,
        want,
    );
    checks.finish();
}

// ----- 3. keys created and revoked while the server runs; audit; metrics -----

/// The lines of `audit.log`, parsed.
/// The server appends its audit lines from a thread of its own, just after answering: the
/// file is read once it has stopped growing (at most 5 s).
fn audit_lines(data: &Path) -> Vec<Value> {
    let path = data.join("audit.log");
    let read = || {
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = read();
    loop {
        std::thread::sleep(Duration::from_millis(150));
        let again = read();
        if again == text || Instant::now() > deadline {
            text = again;
            break;
        }
        text = again;
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

#[test]
fn keys_take_effect_on_a_running_server_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(dir.path());
    let api = Api::of(&server);
    let mut unauthorized = 0;
    let mut forbidden = 0;

    // no keys yet: open, the header picks the tenant
    let anon_events = events("anon", 2, json!({"phase": "anon"}));
    api.ingest(&Cred::None, Some("t1"), &anon_events);
    assert_eq!(api.total(&Cred::None, Some("t1"), "phase:anon"), 2);

    // the first key closes the server at its next request
    let k1 = create_key(&data, Some("t1"), &["ingest", "search"], "lifecycle");
    let refused = api.call("GET", "/api/v1/search?q=*", &Cred::None, Some("t1"), None);
    assert_eq!(
        refused.status, 401,
        "without a key after the first key was created: {}",
        refused.text
    );
    unauthorized += 1;
    let answer = api.ingest(
        &k1.bearer(),
        None,
        &events("k1", 3, json!({"phase": "keyed"})),
    );
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(
        api.total(&k1.bearer(), None, "message:sample"),
        5,
        "a t1 key sees t1's events, also those sent before keys existed"
    );
    assert_eq!(api.histogram_total(&k1.bearer(), None, "phase:keyed"), 3);
    let silence = json!({"matchers": ["rule=x"], "duration": "1h", "created_by": "k1"}).to_string();
    let denied = api.call(
        "POST",
        "/api/v1/silences",
        &k1.bearer(),
        None,
        Some(&silence),
    );
    assert_eq!(denied.status, 403, "silence without admin: {}", denied.text);
    forbidden += 1;

    let op = create_key(&data, None, &["search", "admin"], "operator");
    let listed = list_keys(&data);
    let row = |id: &str| -> Value {
        listed
            .iter()
            .find(|k| k["id"] == id)
            .unwrap_or_else(|| panic!("keys list lacks {id}: {listed:?}"))
            .clone()
    };
    let k1_row = row(&k1.id);
    assert_eq!(k1_row["tenant"], "t1", "{k1_row}");
    assert_eq!(k1_row["scopes"], json!(["ingest", "search"]), "{k1_row}");
    assert_eq!(k1_row["name"], "lifecycle", "{k1_row}");
    assert_eq!(k1_row["revoked_at"], Value::Null, "{k1_row}");
    assert_eq!(
        row(&op.id)["tenant"],
        Value::Null,
        "operator key: {}",
        row(&op.id)
    );

    // revoked: refused at the very next request, with the same answer as no key
    let out = revoke_key(&data, &k1.id);
    assert!(out.contains(&k1.id), "keys revoke printed {out:?}");
    let after = api.call(
        "GET",
        "/api/v1/search?q=after-revoke&start=0&end=now",
        &k1.bearer(),
        None,
        None,
    );
    assert_eq!(
        after.status, 401,
        "search with a revoked key: {}",
        after.text
    );
    assert_eq!(after.text, refused.text, "401 bodies differ");
    unauthorized += 1;
    let after = api.call(
        "POST",
        "/api/v1/ingest",
        &k1.bearer(),
        None,
        Some("{\"message\":\"after revoke\"}\n"),
    );
    assert_eq!(
        after.status, 401,
        "ingest with a revoked key: {}",
        after.text
    );
    unauthorized += 1;
    let listed = list_keys(&data);
    let k1_row = listed
        .iter()
        .find(|k| k["id"] == k1.id.as_str())
        .expect("k1 listed");
    let revoked_at = k1_row["revoked_at"]
        .as_str()
        .unwrap_or_else(|| panic!("keys list: revoked key without revoked_at: {k1_row}"));
    common::parse_rfc3339(revoked_at);
    let op_row = listed
        .iter()
        .find(|k| k["id"] == op.id.as_str())
        .expect("op listed");
    assert_eq!(op_row["revoked_at"], Value::Null, "{op_row}");
    // the events stay: an operator still finds them
    assert_eq!(api.total(&op.bearer(), Some("t1"), "message:sample"), 5);

    // keys are stored hashed
    let stored = std::fs::read_to_string(data.join("keys.json")).expect("keys.json");
    for k in [&k1, &op] {
        assert!(
            !stored.contains(k.secret()),
            "keys.json holds the secret of key {}:\n{stored}",
            k.id
        );
        assert!(stored.contains(&k.id), "keys.json lacks key id {}", k.id);
    }

    // the audit log
    let lines = audit_lines(&data);
    let text = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for k in [&k1, &op] {
        assert!(
            !text.contains(k.secret()),
            "audit.log holds a key's secret:\n{text}"
        );
    }
    let find = |what: &str, pred: &dyn Fn(&Value) -> bool| -> usize {
        lines
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("audit.log has no {what}:\n{text}"))
    };
    let cli = |l: &Value| l["actor"].as_str().is_some_and(|a| a.starts_with("cli:"));
    let k1_actor = format!("key:{}", k1.id);
    let created = find("key.create of k1 by cli:<user> for t1", &|l| {
        l["action"] == "key.create"
            && cli(l)
            && l["tenant"] == "t1"
            && l["key_id"] == k1.id.as_str()
    });
    find("key.create of the operator key with tenant null", &|l| {
        l["action"] == "key.create"
            && cli(l)
            && l["tenant"].is_null()
            && l["key_id"] == op.id.as_str()
    });
    let revoked = find("key.revoke of k1 by cli:<user> for t1", &|l| {
        l["action"] == "key.revoke"
            && cli(l)
            && l["tenant"] == "t1"
            && l["key_id"] == k1.id.as_str()
    });
    // the server noticed the revocation: a reload with one key fewer active
    let reloaded = find("keys.reload by the server after the revocation", &|l| {
        l["action"] == "keys.reload" && l["actor"] == "server" && l["active"].is_u64()
    });
    assert!(
        lines[revoked + 1..]
            .iter()
            .any(|l| l["action"] == "keys.reload" && l["actor"] == "server"),
        "no keys.reload after the revocation (first at line {reloaded}):\n{text}"
    );
    find("anonymous search for t1", &|l| {
        l["action"] == "search"
            && l["actor"] == "anonymous"
            && l["tenant"] == "t1"
            && l["query"] == "phase:anon"
    });
    let searched = find(
        "search by k1 for t1 with its query, range and status",
        &|l| {
            l["action"] == "search"
                && l["actor"] == k1_actor.as_str()
                && l["tenant"] == "t1"
                && l["query"] == "message:sample"
                && l["start"] == "0"
                && l["end"] == "now+1d"
                && l["status"] == 200
        },
    );
    find("histogram by k1 for t1", &|l| {
        l["action"] == "histogram"
            && l["actor"] == k1_actor.as_str()
            && l["tenant"] == "t1"
            && l["query"] == "phase:keyed"
            && l["status"] == 200
    });
    find("search by the operator key for t1", &|l| {
        l["action"] == "search"
            && l["actor"] == format!("key:{}", op.id).as_str()
            && l["tenant"] == "t1"
    });
    assert!(
        created < searched && searched < revoked,
        "audit.log is out of order (create {created}, search {searched}, revoke {revoked}):\n{text}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l["query"] == "after-revoke" && l["status"] == 200),
        "a refused search is audited as answered:\n{text}"
    );
    for l in &lines {
        let ts = l["ts"]
            .as_str()
            .unwrap_or_else(|| panic!("audit line without ts: {l}"));
        common::parse_rfc3339(ts);
    }

    // metrics: audit entries and refusals
    let metrics = api.call("GET", "/metrics", &op.bearer(), None, None);
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    let server_written =
        |action: &str| lines.iter().filter(|l| l["action"] == action).count() as f64;
    let mut checks = Checks::default();
    for action in ["search", "histogram"] {
        checks.eq(
            &format!("sawmill_audit_events_total{{action=\"{action}\"}}"),
            sample(
                &metrics.text,
                "sawmill_audit_events_total",
                &format!("{{action=\"{action}\"}}"),
            ),
            Some(server_written(action)),
        );
    }
    checks.eq("search lines in audit.log", server_written("search"), 3.0);
    checks.eq(
        "sawmill_rejected_requests_total{reason=\"unauthorized\"}",
        sample(
            &metrics.text,
            "sawmill_rejected_requests_total",
            "{reason=\"unauthorized\"}",
        ),
        Some(f64::from(unauthorized)),
    );
    checks.eq(
        "sawmill_rejected_requests_total{reason=\"forbidden\"}",
        sample(
            &metrics.text,
            "sawmill_rejected_requests_total",
            "{reason=\"forbidden\"}",
        ),
        Some(f64::from(forbidden)),
    );
    checks.finish();
}

// ----- 4 and 5: servers this file starts itself -----

/// A `sawmill serve` on an address or with a config the common harness does not cover;
/// killed when dropped.
struct Serve {
    child: Child,
    stdout: mpsc::Receiver<String>,
    log: Arc<Mutex<String>>,
    stderr: Option<JoinHandle<()>>,
}

impl Serve {
    fn start(data_dir: &Path, listen: &str, extra: &[&str]) -> Serve {
        let mut child = Command::new(binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(listen)
            .args(extra)
            .env("SAWMILL_LOG", "info")
            .env_remove("SAWMILL_CONFIG")
            .env_remove("SAWMILL_DATA_DIR")
            .env_remove("SAWMILL_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sawmill serve");
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Serve {
            child,
            stdout,
            log,
            stderr: Some(stderr),
        }
    }

    /// Waits for `sawmill listening on <url>` (`Ok(url)`) or the end of the process
    /// (`Err(status)`).
    fn url_or_exit(&mut self, timeout: Duration) -> Result<String, ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.stdout.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("sawmill listening on ") {
                        return Ok(url.trim().to_string());
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // stdout closed: the process is ending
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Err(status);
            }
            if Instant::now() > deadline {
                panic!(
                    "sawmill serve neither printed its address nor exited within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
        }
    }

    /// Everything the process wrote to stderr; complete once it has exited.
    fn log(&mut self) -> String {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Some(t) = self.stderr.take() {
                let _ = t.join();
            }
        }
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http://0.0.0.0:PORT` → `http://127.0.0.1:PORT`.
fn loopback(url: &str) -> String {
    url.replacen("0.0.0.0", "127.0.0.1", 1)
}

/// Polls `GET {base}/readyz` until it answers 200.
fn wait_ready(http: &reqwest::blocking::Client, base: &str, serve: &mut Serve) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send() {
            if r.status().as_u16() == 200 {
                return;
            }
        }
        if Instant::now() > deadline {
            panic!("{base} not ready within 60 s; log:\n{}", serve.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

#[test]
fn non_loopback_serving_needs_keys_or_allow_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let http = client();

    // no keys: refused, with a message that says what to do
    let empty = dir.path().join("empty");
    let mut serve = Serve::start(&empty, "0.0.0.0:0", &[]);
    let status = serve
        .url_or_exit(Duration::from_secs(60))
        .expect_err("sawmill serve started on 0.0.0.0 without keys");
    let log = serve.log();
    assert!(!status.success(), "exit status {status:?}; log:\n{log}");
    for hint in ["sawmill keys create", "--allow-anonymous"] {
        assert!(
            log.contains(hint),
            "the refusal does not mention {hint:?}:\n{log}"
        );
    }
    drop(serve);

    // --allow-anonymous: serves everyone, with a warning
    let mut serve = Serve::start(&empty, "0.0.0.0:0", &["--allow-anonymous"]);
    let url = serve
        .url_or_exit(Duration::from_secs(60))
        .unwrap_or_else(|s| panic!("--allow-anonymous: exited {s:?}; log:\n{}", serve.log()));
    let base = loopback(&url);
    wait_ready(&http, &base, &mut serve);
    let log = serve.log();
    assert!(
        log.contains("WITHOUT API keys"),
        "no warning in the log:\n{log}"
    );
    let api = Api {
        base,
        http: http.clone(),
    };
    let open = api.call("GET", "/api/v1/alerts", &Cred::None, None, None);
    assert_eq!(
        open.status, 200,
        "anonymous request with --allow-anonymous: {}",
        open.text
    );
    drop(serve);

    // with a key: starts without the flag, without the warning, and asks for the key
    let keyed = dir.path().join("keyed");
    let key = create_key(&keyed, Some("t"), &["search"], "exposed");
    let mut serve = Serve::start(&keyed, "0.0.0.0:0", &[]);
    let url = serve
        .url_or_exit(Duration::from_secs(60))
        .unwrap_or_else(|s| panic!("with a key: exited {s:?}; log:\n{}", serve.log()));
    let base = loopback(&url);
    wait_ready(&http, &base, &mut serve);
    let api = Api {
        base,
        http: http.clone(),
    };
    let refused = api.call("GET", "/api/v1/alerts", &Cred::None, None, None);
    assert_eq!(
        refused.status, 401,
        "no key on an exposed server: {}",
        refused.text
    );
    let ok = api.call("GET", "/api/v1/alerts", &key.bearer(), None, None);
    assert_eq!(ok.status, 200, "with the key: {}", ok.text);
    let log = serve.log();
    assert!(
        !log.contains("WITHOUT API keys"),
        "warning about serving without keys although a key exists:\n{log}"
    );

    // revoking the only key does not open the server, running or restarted
    revoke_key(&keyed, &key.id);
    for cred in [Cred::None, key.bearer()] {
        let got = api.call("GET", "/api/v1/alerts", &cred, None, None);
        assert_eq!(
            got.status, 401,
            "running server, only key revoked, {cred:?}: {}",
            got.text
        );
    }
    drop(serve);
    let mut serve = Serve::start(&keyed, "0.0.0.0:0", &[]);
    let url = serve
        .url_or_exit(Duration::from_secs(60))
        .unwrap_or_else(|s| panic!("with a revoked key: exited {s:?}; log:\n{}", serve.log()));
    let base = loopback(&url);
    wait_ready(&http, &base, &mut serve);
    let api = Api { base, http };
    let got = api.call("GET", "/api/v1/alerts", &Cred::None, None, None);
    assert_eq!(
        got.status, 401,
        "restarted with only a revoked key, no key: {}",
        got.text
    );
}

#[test]
fn https_serves_keyed_ingest_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("self-signed certificate");
    let cert_pem = certified.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let config: PathBuf = dir.path().join("sawmill.toml");
    std::fs::write(
        &config,
        format!("{FAST_CONFIG}[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"),
    )
    .unwrap();
    let key = create_key(&data, Some("tls"), &["ingest", "search"], "tls");

    let mut serve = Serve::start(
        &data,
        "127.0.0.1:0",
        &["--config", config.to_str().unwrap()],
    );
    let url = serve
        .url_or_exit(Duration::from_secs(60))
        .unwrap_or_else(|s| panic!("TLS server exited {s:?}; log:\n{}", serve.log()));
    assert!(url.starts_with("https://"), "TLS server announces {url}");
    // trust only the test certificate: a success proves the server presents it
    let https = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("certificate"),
        )
        .timeout(Duration::from_secs(30))
        .build()
        .expect("https client");
    wait_ready(&https, &url, &mut serve);
    let api = Api {
        base: url.clone(),
        http: https,
    };
    let answer = api.ingest(
        &key.bearer(),
        None,
        &events("tls", 3, json!({"over": "tls"})),
    );
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(api.total(&key.bearer(), None, "over:tls"), 3);
    let refused = api.call("GET", "/api/v1/search?q=*", &Cred::None, None, None);
    assert_eq!(refused.status, 401, "no key over TLS: {}", refused.text);

    // plain HTTP to the TLS port gets no answer worth trusting
    let plain = url.replacen("https://", "http://", 1);
    match client().get(format!("{plain}/healthz")).send() {
        Err(_) => {}
        Ok(r) => assert_ne!(
            r.status().as_u16(),
            200,
            "plain HTTP to the TLS port was answered 200"
        ),
    }
    let plain_search = client()
        .get(format!("{plain}/api/v1/search?q=*"))
        .bearer_auth(&key.key)
        .send();
    if let Ok(r) = plain_search {
        assert_ne!(
            r.status().as_u16(),
            200,
            "a plain-HTTP search to the TLS port was answered 200"
        );
    }
    // and the TLS server still serves
    assert_eq!(api.total(&key.bearer(), None, "over:tls"), 3);
}
