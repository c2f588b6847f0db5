//! The time helpers of `sawmill_core::time`: `parse_rfc3339`, `format_rfc3339`,
//! `parse_timestamp_value`, `parse_time_param` and `parse_duration`.
//!
//! Input layout: bytes 0-7 are an instant (`now`, and a number to format), the rest is
//! text fed to every parser (as a string, and as JSON for `parse_timestamp_value`).
//!
//! Properties:
//! - `format_rfc3339` of any i64 is read back exactly by `parse_rfc3339`, by
//!   `parse_time_param` and (for instants from 1970 on) by `parse_timestamp_value`;
//! - whatever `parse_rfc3339` accepts formats to a string that parses back to the same
//!   instant;
//! - `parse_timestamp_value` only returns instants from 1970 on, and agrees with
//!   `parse_rfc3339` on strings the latter reads (or refuses them as out of range);
//! - `parse_time_param("now")` is `now`; `now-<d>` / `now+<d>` are `now ∓ d` for every
//!   duration text `d` that `parse_duration` reads (or an out-of-range error);
//! - a duration read by `parse_duration` is read back from its nanosecond count (`<n>ns`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sawmill_core::{
    format_rfc3339, parse_duration, parse_rfc3339, parse_time_param, parse_timestamp_value,
};
use serde_json::Value;

fn check_format_round_trip(n: i64, now: i64) {
    let text = format_rfc3339(n);
    assert_eq!(
        parse_rfc3339(&text),
        Some(n),
        "format_rfc3339({n}) = {text}"
    );
    assert_eq!(parse_time_param(&text, now), Ok(n), "time param {text}");
    let value = parse_timestamp_value(&Value::String(text.clone()));
    if n >= 0 {
        assert_eq!(value, Ok(n), "timestamp value {text}");
    } else {
        assert!(value.is_err(), "{text} is before 1970 but was accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let n = i64::from_le_bytes(*head);
    // A realistic clock for `now`: 1970..2262.
    let now = n & i64::MAX;
    check_format_round_trip(n, now);

    let text = String::from_utf8_lossy(rest);
    let text = text.as_ref();

    if let Some(t) = parse_rfc3339(text) {
        check_format_round_trip(t, now);
        match parse_timestamp_value(&Value::String(text.to_owned())) {
            Ok(v) => assert_eq!(v, t, "{text:?}: timestamp value and rfc3339 disagree"),
            Err(e) => assert!(t < 0, "{text:?} ({t}) refused as a timestamp value: {e}"),
        }
        match parse_time_param(text, now) {
            Ok(v) => assert_eq!(v, t, "{text:?}: time param and rfc3339 disagree"),
            Err(e) => panic!("{text:?} ({t}) refused as a time param: {e}"),
        }
    }

    if let Ok(v) = parse_timestamp_value(&Value::String(text.to_owned())) {
        assert!(v >= 0, "{text:?}: timestamp value {v} before 1970");
    }
    if let Ok(json) = serde_json::from_str::<Value>(text) {
        if let Ok(v) = parse_timestamp_value(&json) {
            assert!(v >= 0, "{text:?}: timestamp value {v} before 1970");
        }
    }

    let _ = parse_time_param(text, now);
    assert_eq!(parse_time_param("now", now), Ok(now));

    if let Ok(d) = parse_duration(text) {
        let nanos = d.as_nanos();
        assert_eq!(
            parse_duration(&format!("{nanos}ns")),
            Ok(d),
            "{text:?} = {nanos}ns"
        );
        for (sign, op) in [(-1i128, '-'), (1, '+')] {
            let param = format!("now{op}{text}");
            let expected = i64::try_from(i128::from(now) + sign * nanos as i128);
            match (parse_time_param(&param, now), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{param:?}"),
                (Err(_), Err(_)) => {}
                (got, want) => panic!("{param:?}: got {got:?}, expected {want:?}"),
            }
        }
    }
});
