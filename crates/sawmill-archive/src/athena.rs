//! `CREATE EXTERNAL TABLE` DDL (Athena engine v3) that makes the archive queryable in place
//! with SQL: one row per event, partitioned by tenant, day and hour through partition
//! projection, so no crawler or `MSCK REPAIR TABLE` is needed.

use time::{Date, Month};

/// What the table reads and what it is called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AthenaOptions {
    /// The S3 bucket of the archive.
    pub bucket: String,
    /// The archive's key prefix in the bucket (`/` at either end are ignored; may be empty).
    pub prefix: String,
    /// The table name (`[a-z0-9_]+`).
    pub table: String,
    /// The database (Glue catalog schema) of the table (`[a-z0-9_]+`); `None`: the database
    /// the query runs in.
    pub database: Option<String>,
    /// The first day with data, `YYYY-MM-DD`: the start of the `dt` projection range.
    pub first_day: String,
}

/// An option the DDL cannot be written with; the message says what to use instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AthenaError {
    #[error("the S3 bucket name is empty: set the archive's bucket")]
    EmptyBucket,
    #[error("{bucket:?} is not a valid S3 bucket name: {rule}")]
    InvalidBucket { bucket: String, rule: &'static str },
    #[error("the Athena {what} name is empty")]
    EmptyName { what: &'static str },
    #[error("the Athena {what} name is {len} characters long; Athena allows at most 255")]
    NameTooLong { what: &'static str, len: usize },
    #[error(
        "{name:?} is not a valid Athena {what} name: use only lowercase letters, digits and '_'{}",
        lowercase_hint(name)
    )]
    InvalidName { what: &'static str, name: String },
    #[error("first day {0:?} is not a date written YYYY-MM-DD (for example 2026-01-31)")]
    InvalidDay(String),
    #[error(
        "archive prefix {0:?} contains a single quote, which cannot appear in an Athena \
         LOCATION; choose a prefix without '"
    )]
    QuoteInPrefix(String),
    #[error(
        "archive prefix {0:?} contains a backslash, which Athena reads as an escape in a \
         LOCATION; choose a prefix without \\"
    )]
    BackslashInPrefix(String),
    #[error("archive prefix {0:?} contains control characters; choose a prefix without them")]
    ControlInPrefix(String),
}

/// ` (Athena lowercases names: use "x")` for a name that is only wrong by its case.
fn lowercase_hint(name: &str) -> String {
    if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!(
            " (Athena lowercases names: use {:?})",
            name.to_ascii_lowercase()
        )
    } else {
        String::new()
    }
}

/// Checks an S3 bucket name: 3 to 63 characters, lowercase letters, digits, `.` and `-`,
/// starting and ending with a letter or digit, no `..`, not an IPv4 address.
fn check_bucket(bucket: &str) -> Result<(), AthenaError> {
    if bucket.is_empty() {
        return Err(AthenaError::EmptyBucket);
    }
    let bad = |rule| {
        Err(AthenaError::InvalidBucket {
            bucket: bucket.to_string(),
            rule,
        })
    };
    if !(3..=63).contains(&bucket.len()) {
        return bad("bucket names are 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("bucket names contain only lowercase letters, digits, '.' and '-'");
    }
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(bucket.as_bytes().first()) || !alnum(bucket.as_bytes().last()) {
        return bad("bucket names start and end with a letter or a digit");
    }
    if bucket.contains("..") {
        return bad("bucket names do not contain two periods in a row");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("bucket names are not IP addresses");
    }
    Ok(())
}

/// Checks a table or database name; `what` names it in the message.
fn check_name(what: &'static str, name: &str) -> Result<(), AthenaError> {
    if name.is_empty() {
        return Err(AthenaError::EmptyName { what });
    }
    if name.len() > 255 {
        return Err(AthenaError::NameTooLong {
            what,
            len: name.len(),
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(AthenaError::InvalidName {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Parses `YYYY-MM-DD`.
fn parse_day(day: &str) -> Result<Date, AthenaError> {
    let bad = || AthenaError::InvalidDay(day.to_string());
    let b = day.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(bad());
    }
    let year: i32 = day[0..4].parse().map_err(|_| bad())?;
    let month: u8 = day[5..7].parse().map_err(|_| bad())?;
    let dom: u8 = day[8..10].parse().map_err(|_| bad())?;
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, dom).map_err(|_| bad())
}

/// The archive prefix trimmed of `/`, checked for characters the DDL cannot carry.
fn check_prefix(prefix: &str) -> Result<&str, AthenaError> {
    let prefix = prefix.trim_matches('/');
    if prefix.contains('\'') {
        return Err(AthenaError::QuoteInPrefix(prefix.to_string()));
    }
    if prefix.contains('\\') {
        return Err(AthenaError::BackslashInPrefix(prefix.to_string()));
    }
    if prefix.chars().any(char::is_control) {
        return Err(AthenaError::ControlInPrefix(prefix.to_string()));
    }
    Ok(prefix)
}

/// The `CREATE EXTERNAL TABLE IF NOT EXISTS` statement for the archive described by `o`,
/// preceded by `--` comments on how to query it. `Err` names the invalid option.
pub fn create_table_ddl(o: &AthenaOptions) -> Result<String, AthenaError> {
    check_bucket(&o.bucket)?;
    check_name("table", &o.table)?;
    if let Some(db) = &o.database {
        check_name("database", db)?;
    }
    let first_day = parse_day(&o.first_day)?;
    let prefix = check_prefix(&o.prefix)?;

    let location = if prefix.is_empty() {
        format!("s3://{}/", o.bucket)
    } else {
        format!("s3://{}/{prefix}/", o.bucket)
    };
    let (ddl_name, query_name) = match &o.database {
        Some(db) => (
            format!("`{db}`.`{}`", o.table),
            format!("\"{db}\".\"{}\"", o.table),
        ),
        None => (format!("`{}`", o.table), format!("\"{}\"", o.table)),
    };
    let example_to = first_day.next_day().unwrap_or(first_day);

    let mut s = String::new();
    let mut line = |l: &str| {
        s.push_str(l);
        s.push('\n');
    };
    line("-- The sawmill archive: one row per event, partitioned by tenant, dt (UTC day,");
    line("-- YYYY-MM-DD) and hour (UTC hour, 00 to 23).");
    line(
        "-- Objects are zstd-compressed NDJSON; Athena decompresses them by their .zst extension.",
    );
    line("-- tenant uses injected partition projection: every query must name the tenant");
    line("-- (tenant = 'x' or tenant IN ('x', 'y')), written as in object keys, where bytes");
    line("-- outside A-Z a-z 0-9 _ . - are %-encoded (tenant 'a b' is 'a%20b').");
    line("-- attributes is the event's attributes object as JSON text: read it with");
    line("-- json_extract_scalar(attributes, '$.http.status') or json_extract(attributes, '$.http').");
    line("-- Example:");
    line("--   SELECT \"timestamp\", level, service, host, message,");
    line("--          json_extract_scalar(attributes, '$.http.status') AS http_status");
    line(&format!("--   FROM {query_name}"));
    line(&format!(
        "--   WHERE tenant='default' AND dt BETWEEN '{first_day}' AND '{example_to}'"
    ));
    line("--     AND level = 'error'");
    line("--   ORDER BY \"timestamp\" DESC");
    line("--   LIMIT 100");
    line(&format!("CREATE EXTERNAL TABLE IF NOT EXISTS {ddl_name} ("));
    line("  `timestamp` string,");
    line("  level string,");
    line("  service string,");
    line("  host string,");
    line("  source string,");
    line("  message string,");
    line("  attributes string COMMENT 'JSON text, read with json_extract_scalar or json_extract'");
    line(")");
    line("PARTITIONED BY (tenant string, dt string, hour string)");
    line("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'");
    line("WITH SERDEPROPERTIES ('ignore.malformed.json'='true')");
    line(&format!("LOCATION '{location}'"));
    line("TBLPROPERTIES (");
    line("  'projection.enabled'='true',");
    line("  'projection.tenant.type'='injected',");
    line("  'projection.dt.type'='date',");
    line("  'projection.dt.format'='yyyy-MM-dd',");
    line(&format!("  'projection.dt.range'='{first_day},NOW',"));
    line("  'projection.dt.interval'='1',");
    line("  'projection.dt.interval.unit'='DAYS',");
    line("  'projection.hour.type'='integer',");
    line("  'projection.hour.range'='0,23',");
    line("  'projection.hour.digits'='2',");
    line(&format!(
        "  'storage.location.template'='{location}tenant=${{tenant}}/dt=${{dt}}/hour=${{hour}}/'"
    ));
    line(")");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> AthenaOptions {
        AthenaOptions {
            bucket: "acme-logs".to_string(),
            prefix: "logs/v1".to_string(),
            table: "events".to_string(),
            database: Some("sawmill".to_string()),
            first_day: "2026-01-01".to_string(),
        }
    }

    fn ddl(f: impl FnOnce(&mut AthenaOptions)) -> Result<String, AthenaError> {
        let mut o = options();
        f(&mut o);
        create_table_ddl(&o)
    }

    fn has_line(ddl: &str, line: &str) {
        assert!(
            ddl.lines().any(|l| l == line),
            "missing line {line:?} in\n{ddl}"
        );
    }

    fn err(f: impl FnOnce(&mut AthenaOptions), needle: &str) {
        match ddl(f) {
            Err(e) => assert!(
                e.to_string().contains(needle),
                "{e:?} should contain {needle:?}"
            ),
            Ok(d) => panic!("accepted:\n{d}"),
        }
    }

    #[test]
    fn normal_prefix() {
        let d = ddl(|_| {}).unwrap();
        for l in [
            "CREATE EXTERNAL TABLE IF NOT EXISTS `sawmill`.`events` (",
            "  `timestamp` string,",
            "  level string,",
            "  service string,",
            "  host string,",
            "  source string,",
            "  message string,",
            "PARTITIONED BY (tenant string, dt string, hour string)",
            "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'",
            "WITH SERDEPROPERTIES ('ignore.malformed.json'='true')",
            "LOCATION 's3://acme-logs/logs/v1/'",
            "  'projection.enabled'='true',",
            "  'projection.tenant.type'='injected',",
            "  'projection.dt.type'='date',",
            "  'projection.dt.format'='yyyy-MM-dd',",
            "  'projection.dt.range'='2026-01-01,NOW',",
            "  'projection.dt.interval'='1',",
            "  'projection.dt.interval.unit'='DAYS',",
            "  'projection.hour.type'='integer',",
            "  'projection.hour.range'='0,23',",
            "  'projection.hour.digits'='2',",
            "  'storage.location.template'='s3://acme-logs/logs/v1/tenant=${tenant}/dt=${dt}/hour=${hour}/'",
        ] {
            has_line(&d, l);
        }
        assert!(d.lines().any(|l| l.starts_with("  attributes string")));
        // Comments come first, then exactly one statement.
        let first_sql = d.lines().position(|l| !l.starts_with("--")).unwrap();
        assert!(d
            .lines()
            .nth(first_sql)
            .unwrap()
            .starts_with("CREATE EXTERNAL TABLE"));
        assert!(d.lines().skip(first_sql).all(|l| !l.starts_with("--")));
        assert!(d.contains("json_extract_scalar(attributes, '$.http.status')"));
        assert!(d.contains(".zst"));
        assert!(d.contains("WHERE tenant='default' AND dt BETWEEN '2026-01-01' AND '2026-01-02'"));
        assert!(d.contains("FROM \"sawmill\".\"events\""));
        assert_eq!(d.trim_end().lines().last(), Some(")"));
    }

    #[test]
    fn empty_prefix_and_slashes() {
        for prefix in ["", "/", "//"] {
            let d = ddl(|o| o.prefix = prefix.to_string()).unwrap();
            has_line(&d, "LOCATION 's3://acme-logs/'");
            has_line(
                &d,
                "  'storage.location.template'='s3://acme-logs/tenant=${tenant}/dt=${dt}/hour=${hour}/'",
            );
        }
        let d = ddl(|o| o.prefix = "/logs/v1/".to_string()).unwrap();
        assert_eq!(d, ddl(|_| {}).unwrap());
    }

    #[test]
    fn without_database() {
        let d = ddl(|o| o.database = None).unwrap();
        has_line(&d, "CREATE EXTERNAL TABLE IF NOT EXISTS `events` (");
        assert!(d.contains("FROM \"events\""));
    }

    #[test]
    fn bucket_errors() {
        err(|o| o.bucket = String::new(), "empty");
        err(|o| o.bucket = "ab".to_string(), "3 to 63");
        err(|o| o.bucket = "a".repeat(64), "3 to 63");
        err(|o| o.bucket = "Acme-Logs".to_string(), "lowercase");
        err(|o| o.bucket = "acme_logs".to_string(), "lowercase");
        err(
            |o| o.bucket = "s3://acme".to_string(),
            "not a valid S3 bucket name",
        );
        err(|o| o.bucket = "-acme".to_string(), "start and end");
        err(|o| o.bucket = "acme.".to_string(), "start and end");
        err(|o| o.bucket = "acme..logs".to_string(), "two periods");
        err(|o| o.bucket = "192.168.5.4".to_string(), "IP");
        assert!(ddl(|o| o.bucket = "my.bucket-01".to_string()).is_ok());
        assert!(ddl(|o| o.bucket = "a".repeat(63)).is_ok());
    }

    #[test]
    fn name_errors() {
        err(|o| o.table = String::new(), "table name is empty");
        err(|o| o.table = "Events".to_string(), "use \"events\"");
        err(|o| o.table = "my-events".to_string(), "table");
        err(|o| o.table = "a`b".to_string(), "table");
        err(|o| o.table = "x".repeat(256), "255");
        err(|o| o.database = Some("Logs".to_string()), "database");
        err(
            |o| o.database = Some(String::new()),
            "database name is empty",
        );
        err(|o| o.database = Some("a.b".to_string()), "database");
        assert!(ddl(|o| o.table = "_events_2".to_string()).is_ok());
    }

    #[test]
    fn first_day_errors() {
        for day in [
            "",
            "2026-1-01",
            "2026/01/01",
            "20260101",
            "2026-13-01",
            "2026-00-10",
            "2026-02-30",
            "2025-02-29",
            "+026-01-01",
            " 2026-01-01",
        ] {
            err(|o| o.first_day = day.to_string(), "YYYY-MM-DD");
        }
        assert!(ddl(|o| o.first_day = "2024-02-29".to_string()).is_ok());
        let d = ddl(|o| o.first_day = "2026-12-31".to_string()).unwrap();
        has_line(&d, "  'projection.dt.range'='2026-12-31,NOW',");
        assert!(d.contains("BETWEEN '2026-12-31' AND '2027-01-01'"));
    }

    #[test]
    fn prefix_errors() {
        err(|o| o.prefix = "logs/it's".to_string(), "single quote");
        err(|o| o.prefix = "logs\\v1".to_string(), "backslash");
        err(|o| o.prefix = "logs\nv1".to_string(), "control");
    }
}
