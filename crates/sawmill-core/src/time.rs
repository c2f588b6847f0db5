//! Time handling: RFC 3339 parsing and formatting, epoch numbers told apart by
//! magnitude, search time parameters (`now-15m`) and durations (`1h30m`).
//!
//! Every instant is an `i64` count of nanoseconds since the Unix epoch, UTC,
//! which covers 1677-09-21 to 2262-04-11. Event timestamps are further
//! restricted to 1970 onwards (see [`parse_timestamp_value`]).

use std::time::Duration;

use serde_json::Value;

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// The readable range of event timestamps, for error messages.
const RANGE_TEXT: &str = "the supported range 1970-01-01 to 2262-04-11";

/// Formats nanoseconds since the epoch as RFC 3339 UTC with a `Z` suffix and
/// 3 fractional digits, or 6 or 9 when fewer would lose precision:
/// `2024-05-01T12:00:00.000Z`, `2024-05-01T12:00:00.000001Z`.
pub fn format_rfc3339(nanos: i64) -> String {
    let mut buf = [0u8; RFC3339_MAX_LEN];
    format_rfc3339_into(nanos, &mut buf).to_owned()
}

/// Longest output of [`format_rfc3339_into`]: `2262-04-11T23:47:16.854775807Z`.
pub(crate) const RFC3339_MAX_LEN: usize = 30;

/// Allocation-free form of [`format_rfc3339`], writing into `buf`.
pub(crate) fn format_rfc3339_into(nanos: i64, buf: &mut [u8; RFC3339_MAX_LEN]) -> &str {
    let secs = nanos.div_euclid(NANOS_PER_SEC);
    let frac = nanos.rem_euclid(NANOS_PER_SEC) as u32;
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY) as u32;
    let (year, month, day) = civil_from_days(days);
    // i64 nanoseconds only reach years 1677..=2262, so four digits always fit.
    let year = year.clamp(0, 9999) as u32;

    put_digits(&mut buf[0..4], year);
    buf[4] = b'-';
    put_digits(&mut buf[5..7], month);
    buf[7] = b'-';
    put_digits(&mut buf[8..10], day);
    buf[10] = b'T';
    put_digits(&mut buf[11..13], sod / 3600);
    buf[13] = b':';
    put_digits(&mut buf[14..16], sod / 60 % 60);
    buf[16] = b':';
    put_digits(&mut buf[17..19], sod % 60);
    buf[19] = b'.';
    let digits = match (frac % 1_000_000, frac % 1_000) {
        (0, _) => {
            put_digits(&mut buf[20..23], frac / 1_000_000);
            3
        }
        (_, 0) => {
            put_digits(&mut buf[20..26], frac / 1_000);
            6
        }
        _ => {
            put_digits(&mut buf[20..29], frac);
            9
        }
    };
    let end = 20 + digits;
    buf[end] = b'Z';
    // Only ASCII digits and punctuation were written.
    std::str::from_utf8(&buf[..=end]).unwrap_or_default()
}

/// Writes `value` as zero-padded decimal filling `out`.
fn put_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Parses an RFC 3339 time into nanoseconds since the epoch, leniently.
///
/// Beyond strict RFC 3339 (`2024-05-01T12:00:00.123Z`) this accepts a space or
/// lower-case `t` between date and time, a missing zone (taken as UTC), `z`,
/// `UTC`, offsets written `±HH:MM`, `±HHMM` or `±HH` (optionally after a
/// space), `,` as the decimal mark, any number of fractional digits (beyond 9
/// are truncated), missing seconds (`12:00`) and a bare date (midnight UTC).
/// Returns `None` when the text is not such a time or the instant does not fit
/// in `i64` nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    parse_rfc3339_checked(s).ok()
}

/// A time, timestamp or duration that cannot be read; the message says what was found and
/// what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTime(String);

impl From<String> for InvalidTime {
    fn from(message: String) -> Self {
        InvalidTime(message)
    }
}

impl From<&str> for InvalidTime {
    fn from(message: &str) -> Self {
        InvalidTime(message.to_owned())
    }
}

/// Why a string was not turned into an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeError {
    /// The text has the wrong form.
    Unreadable,
    /// The text is well-formed but the instant is outside what we store.
    OutOfRange,
}

fn parse_rfc3339_checked(s: &str) -> Result<i64, TimeError> {
    let b = s.trim().as_bytes();
    let mut p = Cursor { b, i: 0 };

    let year = p.digits(4).ok_or(TimeError::Unreadable)? as i64;
    p.expect(b'-')?;
    let month = p.digits(2).ok_or(TimeError::Unreadable)?;
    p.expect(b'-')?;
    let day = p.digits(2).ok_or(TimeError::Unreadable)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(TimeError::Unreadable);
    }

    let (mut hour, mut minute, mut second, mut frac) = (0u32, 0u32, 0u32, 0u32);
    let mut offset_secs = 0i64;
    if !p.done() {
        match p.peek() {
            Some(b'T' | b't' | b' ') => p.i += 1,
            _ => return Err(TimeError::Unreadable),
        }
        hour = p.digits(2).ok_or(TimeError::Unreadable)?;
        p.expect(b':')?;
        minute = p.digits(2).ok_or(TimeError::Unreadable)?;
        if p.peek() == Some(b':') {
            p.i += 1;
            second = p.digits(2).ok_or(TimeError::Unreadable)?;
            if matches!(p.peek(), Some(b'.' | b',')) {
                p.i += 1;
                frac = p.fraction().ok_or(TimeError::Unreadable)?;
            }
        }
        // Leap seconds (:60) roll into the next minute.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(TimeError::Unreadable);
        }
        offset_secs = p.zone()?;
    }
    if !p.done() {
        return Err(TimeError::Unreadable);
    }

    let days = days_from_civil(year, month, day);
    let secs =
        days * SECS_PER_DAY + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
            - offset_secs;
    let nanos = i128::from(secs) * i128::from(NANOS_PER_SEC) + i128::from(frac);
    i64::try_from(nanos).map_err(|_| TimeError::OutOfRange)
}

/// A byte cursor for the RFC 3339 parser.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i >= self.b.len()
    }

    fn expect(&mut self, c: u8) -> Result<(), TimeError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(TimeError::Unreadable)
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let chunk = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &c in chunk {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }

    /// One or more fractional digits as nanoseconds; digits past the ninth
    /// are dropped.
    fn fraction(&mut self) -> Option<u32> {
        let start = self.i;
        let mut v = 0u32;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            if self.i - start < 9 {
                v = v * 10 + u32::from(c - b'0');
            }
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            v *= 10;
        }
        Some(v)
    }

    /// An optional zone: nothing, `Z`, `UTC`, `±HH:MM`, `±HHMM` or `±HH`,
    /// optionally after one space. Returns the offset east of UTC in seconds.
    fn zone(&mut self) -> Result<i64, TimeError> {
        if self.done() {
            return Ok(0);
        }
        if self.peek() == Some(b' ') {
            self.i += 1;
        }
        let rest = &self.b[self.i.min(self.b.len())..];
        if rest.eq_ignore_ascii_case(b"z") || rest.eq_ignore_ascii_case(b"utc") {
            self.i = self.b.len();
            return Ok(0);
        }
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(TimeError::Unreadable),
        };
        self.i += 1;
        let hours = self.digits(2).ok_or(TimeError::Unreadable)?;
        let minutes = if self.done() {
            0
        } else {
            if self.peek() == Some(b':') {
                self.i += 1;
            }
            self.digits(2).ok_or(TimeError::Unreadable)?
        };
        if hours > 23 || minutes > 59 {
            return Err(TimeError::Unreadable);
        }
        Ok(sign * (i64::from(hours) * 3600 + i64::from(minutes) * 60))
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How an epoch number is scaled to nanoseconds.
#[derive(Debug, Clone, Copy)]
enum EpochUnits {
    /// Seconds, milliseconds, microseconds or nanoseconds by magnitude.
    Any,
    /// Seconds or milliseconds by magnitude.
    SecondsOrMillis,
}

/// Integer parts below this are seconds (up to year 5138); below 1e14
/// milliseconds, below 1e17 microseconds, otherwise nanoseconds.
const SECONDS_BELOW: u128 = 100_000_000_000;
const MILLIS_BELOW: u128 = 100_000_000_000_000;
const MICROS_BELOW: u128 = 100_000_000_000_000_000;

/// Parses a decimal epoch number (`1714564800`, `1714564800.25`,
/// `1714564800123`, `1.7145648e9`) into nanoseconds. `None` when the text is
/// not a decimal number.
fn parse_epoch(s: &str, units: EpochUnits) -> Option<Result<i64, TimeError>> {
    let b = s.trim().as_bytes();
    let (negative, b) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    // Mantissa digits (at most 29 significant ones kept) and a power of ten.
    let mut mantissa: u128 = 0;
    let mut kept = 0u32;
    let mut exp10: i64 = 0;
    let mut any_digit = false;
    let mut i = 0;
    let mut seen_dot = false;
    while i < b.len() {
        match b[i] {
            c @ b'0'..=b'9' => {
                any_digit = true;
                if mantissa == 0 && c == b'0' {
                    if seen_dot {
                        exp10 -= 1;
                    }
                } else if kept < 29 {
                    mantissa = mantissa * 10 + u128::from(c - b'0');
                    kept += 1;
                    if seen_dot {
                        exp10 -= 1;
                    }
                } else if !seen_dot {
                    exp10 += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => break,
            _ => return None,
        }
        i += 1;
    }
    if !any_digit {
        return None;
    }
    if i < b.len() {
        // Exponent part.
        let exp: i64 = std::str::from_utf8(&b[i + 1..]).ok()?.parse().ok()?;
        exp10 = exp10.checked_add(exp)?;
    }
    if mantissa == 0 {
        return Some(Ok(0));
    }
    if negative {
        return Some(Err(TimeError::OutOfRange));
    }
    // The integer part decides the unit.
    let Some(integer) = scale(mantissa, exp10, 1) else {
        return Some(Err(TimeError::OutOfRange));
    };
    let per_unit: u128 = if integer < SECONDS_BELOW {
        1_000_000_000
    } else if matches!(units, EpochUnits::SecondsOrMillis) || integer < MILLIS_BELOW {
        1_000_000
    } else if integer < MICROS_BELOW {
        1_000
    } else {
        1
    };
    let nanos = scale(mantissa, exp10, per_unit).ok_or(TimeError::OutOfRange);
    Some(nanos.and_then(|n| i64::try_from(n).map_err(|_| TimeError::OutOfRange)))
}

/// `mantissa * 10^exp10 * factor`, rounded down; `None` on overflow.
fn scale(mantissa: u128, exp10: i64, factor: u128) -> Option<u128> {
    let base = mantissa.checked_mul(factor)?;
    if exp10 >= 0 {
        let pow = 10u128.checked_pow(u32::try_from(exp10).ok()?)?;
        base.checked_mul(pow)
    } else {
        match u32::try_from(-exp10)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
        {
            Some(pow) => Some(base / pow),
            None => Some(0),
        }
    }
}

/// Reads an event timestamp from a JSON value: an RFC 3339 string (leniently,
/// see [`parse_rfc3339`]) or a number or numeric string of epoch seconds,
/// milliseconds, microseconds or nanoseconds, told apart by magnitude
/// (integer part below 1e11 is seconds, below 1e14 milliseconds, below 1e17
/// microseconds, otherwise nanoseconds); fractions are allowed.
///
/// The instant must lie between 1970-01-01 and 2262-04-11 (the end of `i64`
/// nanoseconds). The error says what is wrong with the value, without naming
/// the field.
pub fn parse_timestamp_value(value: &Value) -> Result<i64, InvalidTime> {
    let result = match value {
        Value::String(s) => match parse_rfc3339_checked(s) {
            Ok(n) => Ok(n),
            Err(TimeError::OutOfRange) => Err(TimeError::OutOfRange),
            Err(TimeError::Unreadable) => match parse_epoch(s, EpochUnits::Any) {
                Some(r) => r,
                None => {
                    return Err(format!(
                        "cannot read {} as an RFC 3339 time or epoch number",
                        show_value(value)
                    )
                    .into())
                }
            },
        },
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => epoch_from_u64(u),
            (None, Some(_)) => Err(TimeError::OutOfRange),
            // A float: its shortest decimal form is exact enough to scale.
            (None, None) => {
                parse_epoch(&n.to_string(), EpochUnits::Any).unwrap_or(Err(TimeError::Unreadable))
            }
        },
        other => {
            return Err(format!(
                "expected an RFC 3339 time string or an epoch number, found {}",
                json_kind(other)
            )
            .into())
        }
    };
    match result {
        Ok(n) if n >= 0 => Ok(n),
        Err(TimeError::Unreadable) => Err(format!(
            "cannot read {} as an RFC 3339 time or epoch number",
            show_value(value)
        )
        .into()),
        _ => Err(format!("{} is outside {RANGE_TEXT}", show_value(value)).into()),
    }
}

/// The integer fast path of [`parse_epoch`].
fn epoch_from_u64(u: u64) -> Result<i64, TimeError> {
    let u = u128::from(u);
    let nanos = if u < SECONDS_BELOW {
        u * 1_000_000_000
    } else if u < MILLIS_BELOW {
        u * 1_000_000
    } else if u < MICROS_BELOW {
        u * 1_000
    } else {
        u
    };
    i64::try_from(nanos).map_err(|_| TimeError::OutOfRange)
}

/// A JSON value shown in an error message, cut short when long.
pub(crate) fn show_value(value: &Value) -> String {
    const MAX: usize = 64;
    let text = value.to_string();
    if text.len() <= MAX {
        return text;
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// "a string", "an object", … for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a search time parameter into nanoseconds since the epoch.
///
/// Accepts RFC 3339 (leniently, see [`parse_rfc3339`]), epoch seconds or
/// milliseconds told apart by magnitude (below 1e11 is seconds), `now`, and
/// `now` plus or minus a duration such as `now-15m`, `now-2h`, `now-7d`,
/// `now+1h` (units `s`, `m`, `h`, `d`, `w` and anything else
/// [`parse_duration`] reads, e.g. `now-1h30m`).
pub fn parse_time_param(s: &str, now_nanos: i64) -> Result<i64, InvalidTime> {
    let t = s.trim();
    let unreadable = || {
        format!(
            "cannot read {t:?} as a time: use RFC 3339 (2024-05-01T12:00:00Z), epoch seconds or \
             milliseconds, now, or now minus a duration (now-15m, now-2h, now-7d)"
        )
    };
    if let Some(rest) = t.get(3..).filter(|_| t[..3].eq_ignore_ascii_case("now")) {
        let rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(now_nanos);
        }
        let (sign, dur) = match rest.as_bytes()[0] {
            b'-' => (-1i128, &rest[1..]),
            b'+' => (1i128, &rest[1..]),
            _ => return Err(unreadable().into()),
        };
        let dur = parse_duration(dur).map_err(|e| format!("in {t:?}: {e}"))?;
        let nanos = i128::from(now_nanos) + sign * (dur.as_nanos() as i128);
        return i64::try_from(nanos)
            .map_err(|_| format!("{t:?} is outside the representable range 1677..2262").into());
    }
    match parse_rfc3339_checked(t) {
        Ok(n) => return Ok(n),
        Err(TimeError::OutOfRange) => {
            return Err(format!("{t:?} is outside the representable range 1677..2262").into())
        }
        Err(TimeError::Unreadable) => {}
    }
    match parse_epoch(t, EpochUnits::SecondsOrMillis) {
        Some(Ok(n)) => Ok(n),
        Some(Err(_)) => Err(format!("{t:?} is outside {RANGE_TEXT}").into()),
        None => Err(unreadable().into()),
    }
}

/// Parses a duration such as `500ms`, `10s`, `5m`, `1h`, `7d`, `1w` or a
/// combination like `1h30m` or `1h 30m`.
///
/// Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`, `w` and the words
/// `sec(s)`, `second(s)`, `min(s)`, `minute(s)`, `hr(s)`, `hour(s)`,
/// `day(s)`, `week(s)`. A lone `0` is zero; other numbers need a unit.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidTime> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration: write a number and a unit, like 10s, 5m or 1h".into());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(format!(
                "cannot read {t:?} as a duration: expected a number at {rest:?} (like 10s, 5m, 1h30m)"
            ).into());
        }
        let number: u128 = rest[..digits_end]
            .parse()
            .map_err(|_| format!("cannot read {t:?} as a duration: number too large"))?;
        rest = rest[digits_end..].trim_start();
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        let per_unit: u128 = match unit {
            "ns" | "nsec" | "nanos" => 1,
            "us" | "µs" | "usec" | "micros" => 1_000,
            "ms" | "msec" | "millis" => 1_000_000,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000_000_000,
            "d" | "day" | "days" => 86_400_000_000_000,
            "w" | "week" | "weeks" => 604_800_000_000_000,
            "" => {
                return Err(format!(
                    "cannot read {t:?} as a duration: the number needs a unit (ms, s, m, h, d or w)"
                )
                .into())
            }
            other => {
                return Err(format!(
                "cannot read {t:?} as a duration: unknown unit {other:?} (use ms, s, m, h, d or w)"
            )
                .into())
            }
        };
        total = number
            .checked_mul(per_unit)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| format!("duration {t:?} is too large"))?;
        rest = rest[unit_end..].trim_start();
    }
    let secs =
        u64::try_from(total / 1_000_000_000).map_err(|_| format!("duration {t:?} is too large"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T2024: i64 = 1_714_564_800 * NANOS_PER_SEC; // 2024-05-01T12:00:00Z

    #[test]
    fn formats_with_3_6_or_9_digits() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(T2024), "2024-05-01T12:00:00.000Z");
        assert_eq!(
            format_rfc3339(T2024 + 123_000_000),
            "2024-05-01T12:00:00.123Z"
        );
        assert_eq!(
            format_rfc3339(T2024 + 123_456_000),
            "2024-05-01T12:00:00.123456Z"
        );
        assert_eq!(
            format_rfc3339(T2024 + 123_456_789),
            "2024-05-01T12:00:00.123456789Z"
        );
        assert_eq!(format_rfc3339(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(format_rfc3339(i64::MIN), "1677-09-21T00:12:43.145224192Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn format_parse_round_trip() {
        for n in [
            0,
            1,
            999,
            T2024,
            T2024 + 1,
            951_782_400 * NANOS_PER_SEC, // 2000-02-29
            i64::MAX,
            i64::MIN,
            -1,
            4_107_542_400 * NANOS_PER_SEC + 7, // 2100-03-01
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339(n)), Some(n), "{n}");
        }
        // Days (with odd times of day) across a few centuries of leap rules.
        for day in (-40_000..40_000).step_by(37) {
            let n = day * SECS_PER_DAY * NANOS_PER_SEC
                + (day * 7_919_777).rem_euclid(NANOS_PER_SEC * SECS_PER_DAY);
            assert_eq!(parse_rfc3339(&format_rfc3339(n)), Some(n));
        }
    }

    #[test]
    fn parses_strict_rfc3339() {
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00Z"), Some(T2024));
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.5Z"),
            Some(T2024 + 500_000_000)
        );
        assert_eq!(parse_rfc3339("2024-05-01T14:00:00+02:00"), Some(T2024));
        assert_eq!(parse_rfc3339("2024-05-01T07:30:00-04:30"), Some(T2024));
    }

    #[test]
    fn parses_lenient_forms() {
        assert_eq!(parse_rfc3339("2024-05-01 12:00:00"), Some(T2024));
        assert_eq!(parse_rfc3339("2024-05-01t12:00:00z"), Some(T2024));
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00"), Some(T2024));
        assert_eq!(parse_rfc3339("2024-05-01T14:00:00+0200"), Some(T2024));
        assert_eq!(parse_rfc3339("2024-05-01T14:00:00+02"), Some(T2024));
        assert_eq!(parse_rfc3339("2024-05-01 14:00:00 +0200"), Some(T2024));
        assert_eq!(parse_rfc3339("2024-05-01 12:00:00 UTC"), Some(T2024));
        assert_eq!(parse_rfc3339("2024-05-01T12:00"), Some(T2024));
        assert_eq!(
            parse_rfc3339("2024-05-01"),
            Some(T2024 - 12 * 3600 * NANOS_PER_SEC)
        );
        assert_eq!(parse_rfc3339("  2024-05-01T12:00:00Z "), Some(T2024));
        for (frac, nanos) in [
            ("1", 100_000_000),
            ("12", 120_000_000),
            ("123", 123_000_000),
            ("1234", 123_400_000),
            ("123456", 123_456_000),
            ("1234567", 123_456_700),
            ("123456789", 123_456_789),
            ("1234567891", 123_456_789),
        ] {
            assert_eq!(
                parse_rfc3339(&format!("2024-05-01T12:00:00.{frac}Z")),
                Some(T2024 + nanos),
                "{frac}"
            );
        }
        assert_eq!(
            parse_rfc3339("2024-05-01 12:00:00,250"),
            Some(T2024 + 250_000_000)
        );
    }

    #[test]
    fn rejects_malformed_rfc3339() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2",
            "2024-05-01T12:00:00+25:00",
            "2024-05-01T12:00:00Zjunk",
            "2024-5-1T12:00:00Z",
            "2024-05-01X12:00:00Z",
            "1714564800",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(1_709_164_800 * NANOS_PER_SEC)
        );
        // Beyond i64 nanoseconds.
        assert_eq!(parse_rfc3339("2263-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("1600-01-01T00:00:00Z"), None);
    }

    #[test]
    fn epoch_magnitudes() {
        let cases = [
            json!(1_714_564_800u64),
            json!(1_714_564_800_000u64),
            json!(1_714_564_800_000_000u64),
            json!(1_714_564_800_000_000_000u64),
            json!("1714564800"),
            json!("1714564800000"),
            json!("1714564800000000"),
            json!("1714564800000000000"),
            json!(1_714_564_800.0),
            json!(1.7145648e9),
            json!("1.7145648e12"),
        ];
        for v in cases {
            assert_eq!(parse_timestamp_value(&v), Ok(T2024), "{v}");
        }
    }

    #[test]
    fn epoch_fractions() {
        assert_eq!(
            parse_timestamp_value(&json!(1_714_564_800.25)),
            Ok(T2024 + 250_000_000)
        );
        assert_eq!(
            parse_timestamp_value(&json!("1714564800.123456789")),
            Ok(T2024 + 123_456_789)
        );
        assert_eq!(
            parse_timestamp_value(&json!(1_714_564_800_123.5)),
            Ok(T2024 + 123_500_000)
        );
        assert_eq!(
            parse_timestamp_value(&json!("1714564800123456.789")),
            Ok(T2024 + 123_456_789)
        );
        assert_eq!(parse_timestamp_value(&json!(0)), Ok(0));
        assert_eq!(parse_timestamp_value(&json!("0.5")), Ok(500_000_000));
    }

    #[test]
    fn timestamp_errors_say_what_is_wrong() {
        assert_eq!(
            parse_timestamp_value(&json!("yesterday")),
            Err("cannot read \"yesterday\" as an RFC 3339 time or epoch number".into())
        );
        let before = parse_timestamp_value(&json!("1960-01-01T00:00:00Z"))
            .unwrap_err()
            .to_string();
        assert!(
            before.contains("outside the supported range 1970"),
            "{before}"
        );
        let neg = parse_timestamp_value(&json!(-5)).unwrap_err().to_string();
        assert!(neg.contains("outside"), "{neg}");
        let huge = parse_timestamp_value(&json!(u64::MAX))
            .unwrap_err()
            .to_string();
        assert!(huge.contains("outside"), "{huge}");
        let huge = parse_timestamp_value(&json!("99999999999999999999999"))
            .unwrap_err()
            .to_string();
        assert!(huge.contains("outside"), "{huge}");
        let big_secs = parse_timestamp_value(&json!(99_999_999_999.0))
            .unwrap_err()
            .to_string();
        assert!(big_secs.contains("outside"), "{big_secs}");
        let obj = parse_timestamp_value(&json!({"a": 1}))
            .unwrap_err()
            .to_string();
        assert!(obj.contains("found an object"), "{obj}");
        let b = parse_timestamp_value(&json!(true)).unwrap_err().to_string();
        assert!(b.contains("found a boolean"), "{b}");
        for bad in ["", "1.2.3", "12abc", "e5", "-", "."] {
            assert!(parse_timestamp_value(&json!(bad)).is_err(), "{bad}");
        }
        let long = "x".repeat(500);
        let e = parse_timestamp_value(&json!(long)).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn time_params() {
        let now = T2024;
        let min = 60 * NANOS_PER_SEC;
        assert_eq!(parse_time_param("now", now), Ok(now));
        assert_eq!(parse_time_param("NOW", now), Ok(now));
        assert_eq!(parse_time_param("now-15m", now), Ok(now - 15 * min));
        assert_eq!(parse_time_param("now-2h", now), Ok(now - 120 * min));
        assert_eq!(parse_time_param("now-7d", now), Ok(now - 7 * 1440 * min));
        assert_eq!(parse_time_param("now+1h", now), Ok(now + 60 * min));
        assert_eq!(
            parse_time_param("now-30s", now),
            Ok(now - 30 * NANOS_PER_SEC)
        );
        assert_eq!(parse_time_param("now-1w", now), Ok(now - 7 * 1440 * min));
        assert_eq!(parse_time_param("now - 1h30m", now), Ok(now - 90 * min));
        assert_eq!(parse_time_param("2024-05-01T12:00:00Z", 0), Ok(T2024));
        assert_eq!(parse_time_param("2024-05-01 14:00:00+02:00", 0), Ok(T2024));
        assert_eq!(parse_time_param("1714564800", 0), Ok(T2024));
        assert_eq!(parse_time_param("1714564800000", 0), Ok(T2024));
        assert_eq!(parse_time_param("1714564800.5", 0), Ok(T2024 + 500_000_000));
        for bad in [
            "",
            "yesterday",
            "now-",
            "now-15",
            "now*2",
            "now-15x",
            "nowish",
        ] {
            let e = parse_time_param(bad, now).unwrap_err().to_string();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(parse_time_param("now+100000w", now).is_err());
        assert!(parse_time_param("99999999999999999999", now).is_err());
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s);
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(d("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(d("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(d("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(d("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(d("1w"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(d("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(d("1h 30m 15s"), Ok(Duration::from_secs(5415)));
        assert_eq!(d("2 minutes"), Ok(Duration::from_secs(120)));
        assert_eq!(d(" 250us "), Ok(Duration::from_micros(250)));
        assert_eq!(d("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "10",
            "abc",
            "5x",
            "1h30",
            "-5s",
            "1.5h",
            "99999999999999999999999w",
        ] {
            assert!(d(bad).is_err(), "{bad}");
        }
        assert!(d("10").unwrap_err().to_string().contains("needs a unit"));
        assert!(d("5x")
            .unwrap_err()
            .to_string()
            .contains("unknown unit \"x\""));
    }
}
