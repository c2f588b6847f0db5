//! The CPU part of the pipeline, on the blocking pool: decompress, charge the tenant's rate,
//! decode, redact, match the alert rules, and encode the WAL record with its index documents.

use super::{Decode, DecodeContext, Refusal};
use crate::batch::Batch;
use crate::limits::{RateLimited, TenantPolicies, TenantPolicy};
use sawmill_core::record::RecordHeader;
use sawmill_core::{decompress, ContentEncoding, IngestAnswer, ParseContext, Parsed};
use sawmill_index::schema::Fields;
use std::borrow::Cow;

/// One request's body and what it needs to become a record.
pub(super) struct Input<'a> {
    pub body: &'a [u8],
    pub encoding: ContentEncoding,
    pub ctx: &'a ParseContext,
    pub tenant: String,
    pub key: Option<String>,
}

/// A request ready to append.
pub(super) struct Prepared {
    pub answer: IngestAnswer,
    /// The answer's JSON, stored in the record for a retried idempotency key.
    pub stored: Vec<u8>,
    /// Size of the decompressed body.
    pub decompressed: usize,
    /// Events in which redaction replaced something.
    pub redacted: usize,
    /// `None` when no event was accepted: nothing to append.
    pub batch: Option<Batch>,
    pub matches: Option<sawmill_alerts::Matches>,
    /// The decoder's [`DecodeContext::on_settled`], to call when the request ends.
    pub settle: Option<super::Settle>,
}

pub(super) fn prepare(
    input: Input<'_>,
    decoder: impl Decode,
    fields: &Fields,
    alerts: &sawmill_alerts::AlertHandle,
    tenants: &TenantPolicies,
) -> Result<Prepared, Refusal> {
    let Input {
        body,
        encoding,
        ctx,
        tenant,
        key,
    } = input;
    let raw = decompress(encoding, body, ctx.limits.max_decompressed_bytes)?;
    let policy = tenants.get(&tenant);
    let mut meter = Meter {
        tenants,
        policy: &policy,
        tenant: &tenant,
        charged: 0,
    };
    meter.charge(raw.len())?;
    let mut context = DecodeContext {
        parse: ctx,
        meter,
        settle: None,
    };
    let decoded = decoder.decode(&raw, &mut context);
    let settle = context.settle;
    let mut parsed = match decoded {
        Ok(parsed) => parsed,
        Err(refusal) => {
            if let Some(settle) = settle {
                settle(false);
            }
            return Err(refusal);
        }
    };
    let redacted = redact(&policy, &mut parsed);
    let answer = IngestAnswer {
        accepted: parsed.events.len() as u64,
        rejected: parsed.rejected as u64,
        errors: parsed.errors,
        searchable: None,
        first_seq: None,
    };
    let stored = answer.to_json();
    let matches = alerts.match_events(&tenant, &parsed.events);
    let batch = (!parsed.events.is_empty()).then(|| {
        let header = RecordHeader {
            tenant,
            received_at: ctx.received_at,
            idempotency_key: key,
            answer: stored.clone(),
        };
        Batch::encode(header, parsed.events, fields)
    });
    Ok(Prepared {
        answer,
        stored,
        decompressed: raw.len(),
        redacted,
        batch,
        matches,
        settle,
    })
}

/// The tenant's rate limit, charged with decompressed bytes.
pub(super) struct Meter<'a> {
    tenants: &'a TenantPolicies,
    policy: &'a TenantPolicy,
    tenant: &'a str,
    /// Bytes charged for this request so far.
    charged: usize,
}

impl Meter<'_> {
    /// Takes `bytes` from the tenant's bucket, or refuses the request.
    pub fn charge(&mut self, bytes: usize) -> Result<(), Refusal> {
        self.charged += bytes;
        self.tenants
            .charge(self.policy, bytes)
            .map_err(|limited| match limited {
                RateLimited::Wait(wait) => Refusal::RateLimited {
                    tenant: self.tenant.to_string(),
                    retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
                },
                RateLimited::LargerThanBurst { burst_bytes } => Refusal::OverBurst {
                    tenant: self.tenant.to_string(),
                    bytes: self.charged,
                    burst_bytes,
                },
            })
    }
}

/// Applies the tenant's redaction to the events and to the error messages (which quote bad
/// values, and are stored with the answer); returns how many events changed.
fn redact(policy: &TenantPolicy, parsed: &mut Parsed) -> usize {
    let Some(redactor) = &policy.redactor else {
        return 0;
    };
    for e in parsed.errors.iter_mut() {
        if let Cow::Owned(text) = redactor.redact_str(&e.error) {
            e.error = text;
        }
    }
    parsed
        .events
        .iter_mut()
        .map(|e| usize::from(redactor.redact_event(e)))
        .sum()
}
