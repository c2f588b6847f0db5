//! `sawmill_core::redact::Redactor` over arbitrary text and JSON values.
//!
//! Input layout: byte 0 picks the built-in detectors (bits 0-5) or, with bit 7 set, a custom
//! pattern instead, whose length (at most 48 bytes) is byte 1 and which is taken from the
//! front of the rest; the rest is the text, also read as JSON when it is JSON.
//!
//! Properties:
//! - `Detector::parse_list` accepts the names of the chosen detectors and gives them back;
//! - the result is borrowed exactly when nothing was replaced: borrowed text equals the
//!   input, changed text contains a `[REDACTED:<name>]` label of a configured rule;
//! - text that contains none of the characters any built-in detector needs (ASCII letters
//!   and digits, '@', ':') is left alone;
//! - `redact_value` keeps the JSON shape (same keys, same array lengths, same numbers,
//!   booleans and nulls) and each string becomes `redact_str` of it;
//! - an empty redactor changes nothing.
#![no_main]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use sawmill_core::redact::{Detector, Redactor};
use serde_json::Value;

fn same_shape(r: &Redactor, before: &Value, after: &Value) {
    match (before, after) {
        (Value::String(a), Value::String(b)) => assert_eq!(r.redact_str(a).as_ref(), b.as_str()),
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len());
            a.iter().zip(b).for_each(|(x, y)| same_shape(r, x, y));
        }
        (Value::Object(a), Value::Object(b)) => {
            assert!(a.keys().eq(b.keys()), "keys changed");
            a.values()
                .zip(b.values())
                .for_each(|(x, y)| same_shape(r, x, y));
        }
        (a, b) => assert_eq!(a, b, "a non-string value changed"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[mask, custom_len], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let mut detectors: Vec<Detector> = Detector::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, d)| d)
        .collect();
    let mut names: Vec<&str> = detectors.iter().map(|d| d.name()).collect();
    assert_eq!(
        Detector::parse_list(&names.join(",")).ok(),
        Some(detectors.clone())
    );

    let custom_len = usize::from(custom_len % 49).min(rest.len());
    let (pattern, text) = rest.split_at(custom_len);
    let mut custom = Vec::new();
    if custom_len > 0 && mask & 0x80 != 0 {
        custom.push((
            "custom".to_owned(),
            String::from_utf8_lossy(pattern).into_owned(),
        ));
    }
    let redactor = if custom.is_empty() {
        // Compiling the built-in rules takes milliseconds: once per detector set.
        static CACHE: Mutex<BTreeMap<u8, Redactor>> = Mutex::new(BTreeMap::new());
        let mut cache = CACHE.lock().unwrap();
        cache
            .entry(mask & 0x3f)
            .or_insert_with(|| {
                Redactor::new(&detectors, &[]).expect("the built-in detectors compile")
            })
            .clone()
    } else {
        // With a custom pattern the built-ins are left out: compiling them again for every
        // input would make this target a hundred times slower.
        detectors.clear();
        names.clear();
        match Redactor::new(&detectors, &custom) {
            Ok(r) => r,
            // A custom pattern may be refused, with a message naming it.
            Err(e) => {
                assert!(e.to_string().contains("\"custom\""), "{e}");
                return;
            }
        }
    };
    assert_eq!(
        redactor.is_empty(),
        detectors.is_empty() && custom.is_empty()
    );
    let labels: Vec<String> = names
        .iter()
        .map(|n| format!("[REDACTED:{n}]"))
        .chain(custom.iter().map(|(n, _)| format!("[REDACTED:{n}]")))
        .collect();

    let text = String::from_utf8_lossy(text);
    let text = text.as_ref();
    let out = redactor.redact_str(text);
    match &out {
        Cow::Borrowed(s) => assert_eq!(*s, text),
        Cow::Owned(s) => {
            assert!(
                labels.iter().any(|l| s.contains(l.as_str())),
                "changed without a label: {text:?} -> {s:?}"
            );
        }
    }
    if redactor.is_empty() {
        assert!(matches!(out, Cow::Borrowed(_)));
    }
    // Every built-in detector needs an ASCII letter or digit, '@' or ':': text without any
    // (such as "١.٢.٣.٤", Arabic-Indic digits) is never touched by them.
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '@' || c == ':';
    if custom.is_empty() && !text.chars().any(plain) {
        assert!(matches!(out, Cow::Borrowed(_)), "{text:?} -> {out:?}");
    }

    if let Ok(value) = serde_json::from_str::<Value>(text) {
        let mut redacted = value.clone();
        let _ = redactor.redact_value(&mut redacted);
        same_shape(&redactor, &value, &redacted);
    }
});
