//! Authentication and authorization of API requests.
//!
//! Each route group names what it needs: a scope for one tenant (`ingest`, `search`,
//! `admin`), or a scope over every tenant (server-wide operations: flush, reloads,
//! metrics), or any valid key (the Elasticsearch API's version and setup probes). The key
//! comes as `Authorization: Bearer <key>`, as the password of HTTP Basic (for shippers that
//! only speak Basic; the user name is ignored), as Elasticsearch's `ApiKey` (the base64 of
//! `id:key`, or the key itself) or as `X-Amz-Firehose-Access-Key`. Missing, malformed, unknown and revoked keys are all answered
//! `401` with the same message; a valid key without the scope or for another tenant gets
//! `403` — neither says whether another key or tenant exists.
//!
//! The tenant a request acts for is the key's own. Operator keys (bound to every tenant) and
//! a server without keys choose it with the `X-Sawmill-Tenant` header (default `default`); a
//! tenant key may send the header only with its own tenant.
//!
//! A server whose keys file has no key at all runs open: every request acts as an operator.

use super::{ApiError, State};
use crate::keys::{validate_tenant, Scope};
use axum::extract::{Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// The header that picks a tenant for operator keys.
pub const TENANT_HEADER: &str = "x-sawmill-tenant";
pub use sawmill_core::tenant::DEFAULT_TENANT;

/// What a route needs of its caller.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// `scope` for the tenant the request acts for.
    Tenant(Scope),
    /// `scope` on an operator key (every tenant): server-wide operations.
    Operator(Scope),
    /// Any valid key, whatever its scopes: answers that tell a client only that it may talk
    /// to the server (the Elasticsearch API's version and setup probes).
    AnyScope,
}

/// Who is calling, attached to each authorized request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's id; `None` on a server without keys.
    pub key_id: Option<String>,
    /// The tenant the request acts for.
    pub tenant: String,
    /// True for operator keys and servers without keys.
    pub operator: bool,
}

impl Caller {
    /// The actor named in the audit log.
    pub fn actor(&self) -> String {
        crate::audit::actor_of(self.key_id.as_deref())
    }

    /// The tenant filter for listings of shared things (alert rules, silences): `None` for
    /// operators (everything), else the caller's tenant.
    pub fn tenant_filter(&self) -> Option<&str> {
        (!self.operator).then_some(self.tenant.as_str())
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message).because("unauthorized")
}

const BAD_KEY: &str =
    "missing or invalid API key: send Authorization: Bearer <key> (see `sawmill keys create`)";

/// The key a request carries, if any; `Err` when the credentials are unreadable.
fn presented_key(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| BAD_KEY)?;
        let (scheme, rest) = text.split_once(' ').ok_or(BAD_KEY)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(Some(rest.to_string()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| BAD_KEY)?;
            let pair = String::from_utf8(decoded).map_err(|_| BAD_KEY)?;
            let (_, password) = pair.split_once(':').ok_or(BAD_KEY)?;
            return Ok(Some(password.to_string()));
        }
        if scheme.eq_ignore_ascii_case("apikey") {
            return Ok(Some(api_key(rest)));
        }
        return Err(
            "unsupported Authorization scheme: use Bearer <key>, Basic with the key as password, or ApiKey <key>",
        );
    }
    if let Some(value) = headers.get("x-amz-firehose-access-key") {
        return Ok(Some(value.to_str().map_err(|_| BAD_KEY)?.to_string()));
    }
    Ok(None)
}

/// The key of Elasticsearch's `ApiKey` credentials: the base64 of `id:key` (the id is
/// ignored), or the key itself.
fn api_key(value: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|pair| pair.split_once(':').map(|(_, key)| key.to_string()))
        .unwrap_or_else(|| value.to_string())
}

fn requested_tenant(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(TENANT_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Sawmill-Tenant must be ASCII"))?;
    validate_tenant(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Some(text.to_string()))
}

/// Decides whether the request may go on and with which [`Caller`].
pub fn authorize(state: &State, need: Need, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let reject = |reason: &'static str, error: ApiError| {
        state.metrics.refuse(reason);
        error
    };
    let keys = match state.keys.current_or_reloaded() {
        Ok((k, reloaded)) => {
            if reloaded {
                let (all, active) = k.counts();
                tracing::info!(keys = all, active, "API keys reloaded");
                state.audit.record(
                    "keys.reload",
                    "server",
                    None,
                    serde_json::json!({ "keys": all, "active": active }),
                );
                state
                    .metrics
                    .audit_events
                    .with_label_values(&["keys.reload"])
                    .inc();
            }
            k
        }
        Err(e) => {
            // the previous keys stay in force
            tracing::error!(error = %sawmill_core::error::report(e.as_ref()), "cannot reload the keys file");
            state.keys.loaded()
        }
    };
    if keys.is_empty() {
        let requested = requested_tenant(headers).map_err(|e| reject("bad_request", e))?;
        return Ok(Caller {
            key_id: None,
            tenant: requested.unwrap_or_else(|| DEFAULT_TENANT.to_string()),
            operator: true,
        });
    }
    let key = match presented_key(headers) {
        Ok(Some(k)) => k,
        Ok(None) => return Err(reject("unauthorized", unauthorized(BAD_KEY))),
        Err(message) => return Err(reject("unauthorized", unauthorized(message))),
    };
    let grant = keys
        .check(&key)
        .map_err(|_| reject("unauthorized", unauthorized(BAD_KEY)))?;
    // the tenant header is read only once the key is known good: a bad header must not
    // answer an unauthenticated caller anything but 401
    let requested = requested_tenant(headers).map_err(|e| reject("bad_request", e))?;
    let forbidden =
        |message: String| reject("forbidden", ApiError::new(StatusCode::FORBIDDEN, message));
    let (scope, operator_only) = match need {
        Need::Tenant(s) => (Some(s), false),
        Need::Operator(s) => (Some(s), true),
        Need::AnyScope => (None, false),
    };
    if let Some(scope) = scope.filter(|s| !grant.scopes.contains(s)) {
        return Err(forbidden(format!(
            "this key lacks the '{}' scope this endpoint needs",
            scope.as_str()
        )));
    }
    match grant.tenant {
        None => Ok(Caller {
            key_id: Some(grant.key_id),
            tenant: requested.unwrap_or_else(|| DEFAULT_TENANT.to_string()),
            operator: true,
        }),
        Some(own) => {
            if operator_only {
                return Err(forbidden(
                    "this endpoint acts on every tenant and needs an operator key (created with --all-tenants)"
                        .to_string(),
                ));
            }
            if requested.as_ref().is_some_and(|t| *t != own) {
                return Err(forbidden(
                    "this key may act only for its own tenant".to_string(),
                ));
            }
            Ok(Caller {
                key_id: Some(grant.key_id),
                tenant: own,
                operator: false,
            })
        }
    }
}

/// The middleware: authorizes, then hands the [`Caller`] to the handler.
pub async fn require(
    AxumState((state, need)): AxumState<(State, Need)>,
    mut request: Request,
    next: Next,
) -> Response {
    match authorize(&state, need, request.headers()) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => {
            let status = error.status;
            let mut response = error.into_response();
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sawmill\""),
                );
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn keys_are_read_from_bearer_basic_and_firehose_headers() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("anyone:smk_k");
        for h in [
            headers(&[("authorization", "Bearer smk_k")]),
            headers(&[("authorization", "bearer  smk_k")]),
            headers(&[("authorization", &format!("Basic {b64}"))]),
            headers(&[("x-amz-firehose-access-key", "smk_k")]),
            headers(&[("authorization", "ApiKey smk_k")]),
            headers(&[(
                "authorization",
                &format!(
                    "ApiKey {}",
                    base64::engine::general_purpose::STANDARD.encode("id1:smk_k")
                ),
            )]),
        ] {
            assert_eq!(presented_key(&h).unwrap().as_deref(), Some("smk_k"));
        }
        assert_eq!(presented_key(&headers(&[])).unwrap(), None);
        assert!(presented_key(&headers(&[("authorization", "Digest x")])).is_err());
        assert!(presented_key(&headers(&[("authorization", "Basic !!!")])).is_err());
    }
}
