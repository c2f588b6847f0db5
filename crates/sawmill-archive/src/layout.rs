//! Where archive objects go: Hive-style partitions by tenant, day and hour.
//!
//! `<prefix>/tenant=<t>/dt=YYYY-MM-DD/hour=HH/<writer>-<first_ts>-<last_ts>-<id>.ndjson.zst`
//! where `first_ts`/`last_ts` are the batch's first and last event times (`YYYYMMDDTHHMMSSZ`)
//! and `id` is the WAL sequence number of the batch's first event, so a batch written again
//! after a crash gets the same key.

use time::OffsetDateTime;

/// Nanoseconds in one hour.
pub const HOUR_NANOS: i64 = 3_600_000_000_000;

/// The hour (hours since the epoch) a timestamp falls in.
pub fn hour_of(ts: i64) -> i64 {
    ts.div_euclid(HOUR_NANOS)
}

fn datetime(nanos: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `YYYYMMDDTHHMMSSZ` of a timestamp.
fn compact(nanos: i64) -> String {
    let t = datetime(nanos);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A tenant name as it appears in a key: bytes outside `[A-Za-z0-9_.-]` are %-encoded.
pub fn key_safe(tenant: &str) -> String {
    let mut out = String::with_capacity(tenant.len());
    for b in tenant.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The key prefix of one tenant's hour: `<prefix>/tenant=<t>/dt=YYYY-MM-DD/hour=HH/`.
pub fn hour_prefix(prefix: &str, tenant: &str, hour: i64) -> String {
    let t = datetime(hour.saturating_mul(HOUR_NANOS));
    let mut key = String::new();
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        key.push_str(prefix);
        key.push('/');
    }
    key.push_str(&format!(
        "tenant={}/dt={:04}-{:02}-{:02}/hour={:02}/",
        key_safe(tenant),
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    ));
    key
}

/// The full key of a batch.
pub fn object_key(
    prefix: &str,
    tenant: &str,
    hour: i64,
    writer: &str,
    first_ts: i64,
    last_ts: i64,
    first_seq: u64,
) -> String {
    format!(
        "{}{}-{}-{}-{first_seq:020}.ndjson.zst",
        hour_prefix(prefix, tenant, hour),
        key_safe(writer),
        compact(first_ts),
        compact(last_ts)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_contract_layout() {
        // 2026-11-27T10:15:00Z and 10:59:59Z
        let first = 1_795_774_500 * 1_000_000_000;
        let last = 1_795_777_199 * 1_000_000_000;
        let key = object_key("logs/v1", "acme", hour_of(first), "node-1", first, last, 42);
        assert_eq!(
            key,
            "logs/v1/tenant=acme/dt=2026-11-27/hour=10/node-1-20261127T101500Z-20261127T105959Z-00000000000000000042.ndjson.zst"
        );
        assert_eq!(hour_of(last), hour_of(first));
    }

    #[test]
    fn empty_prefix_and_odd_tenants() {
        assert_eq!(
            hour_prefix("", "a b/c", 0),
            "tenant=a%20b%2Fc/dt=1970-01-01/hour=00/"
        );
        assert_eq!(
            hour_prefix("/p/", "t", 25),
            "p/tenant=t/dt=1970-01-02/hour=01/"
        );
        assert_eq!(hour_of(-1), -1);
    }
}
