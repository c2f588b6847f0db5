//! `sawmill_core::decompress` and `decode_body`: identity, gzip and zstd bodies under a
//! small decompressed-size limit.
//!
//! Input layout: byte 0 picks the encoding (bits 0-1) and the mode (bits 2-3), bytes 1-2 the
//! limit (0..=65535 bytes), byte 3 a corruption offset; the rest is the body.
//!
//! Modes:
//! - raw: the bytes are handed to the decoder as they are (arbitrary compressed streams);
//! - valid: the bytes are compressed here first, as one or two gzip members / zstd frames,
//!   so the decoder sees well-formed streams and the round trip can be checked exactly;
//! - valid then truncated, or with one byte flipped: damaged but realistic streams.
//!
//! Properties:
//! - the output never exceeds the limit, and `TooLarge` reports that same limit;
//! - identity is borrowed and equal to the input when it fits, `TooLarge` when it does not;
//! - an empty body decodes to nothing whatever the encoding;
//! - a well-formed stream decodes to exactly what was compressed when that fits the limit,
//!   and is refused with `TooLarge` when it does not;
//! - a truncated stream never decodes to more than what was compressed;
//! - `decode_body` refuses a body over `max_body_bytes` before decoding, and otherwise
//!   agrees with `decompress`.
#![no_main]

use std::borrow::Cow;
use std::io::Write;

use libfuzzer_sys::fuzz_target;
use sawmill_core::{decode_body, decompress, ContentEncoding, DecodeError, Limits};

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    enc.write_all(data).expect("gzip into a Vec");
    enc.finish().expect("gzip into a Vec")
}

fn zstd(data: &[u8], level: i32) -> Vec<u8> {
    zstd::stream::encode_all(data, level).expect("zstd into a Vec")
}

fn check_limit(enc: ContentEncoding, body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let result = decompress(enc, body, limit);
    match &result {
        Ok(out) => {
            assert!(
                out.len() <= limit,
                "{enc:?}: {} bytes decoded, over the limit {limit}",
                out.len()
            );
            if enc == ContentEncoding::Identity {
                assert!(matches!(out, Cow::Borrowed(_)), "identity must borrow");
                assert_eq!(&**out, body);
            }
        }
        Err(DecodeError::TooLarge { limit: reported }) => {
            assert_eq!(*reported, limit, "{enc:?}: TooLarge names another limit");
        }
        Err(DecodeError::Corrupt(message)) => {
            assert_ne!(enc, ContentEncoding::Identity, "identity cannot be corrupt");
            assert!(!message.is_empty());
        }
        Err(other) => panic!("{enc:?}: decompress returned {other:?}"),
    }
    if body.is_empty() {
        assert_eq!(result.as_deref().ok(), Some(&[][..]), "{enc:?}: empty body");
    }
    if enc == ContentEncoding::Identity && body.len() > limit {
        assert!(matches!(result, Err(DecodeError::TooLarge { .. })));
    }

    // decode_body: the compressed size is checked first, then decompress with the other limit.
    let max_body = body.len().saturating_sub(usize::from(body.len() % 3 == 0));
    let limits = Limits {
        max_body_bytes: max_body,
        max_decompressed_bytes: limit,
        ..Limits::default()
    };
    let via_body = decode_body(enc, body, &limits);
    if body.len() > max_body {
        assert_eq!(
            via_body.map(|c| c.len()),
            Err(DecodeError::BodyTooLarge {
                size: body.len(),
                limit: max_body
            })
        );
    } else {
        assert_eq!(
            via_body.map(Cow::into_owned),
            result.clone().map(Cow::into_owned)
        );
    }
    result.map(Cow::into_owned)
}

fuzz_target!(|data: &[u8]| {
    let Some((&[control, lo, hi, cut], rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let enc = match control & 3 {
        0 => ContentEncoding::Identity,
        1 | 3 => ContentEncoding::Gzip,
        _ => ContentEncoding::Zstd,
    };
    let limit = usize::from(u16::from_le_bytes([lo, hi]));
    let mode = (control >> 2) & 3;
    if mode == 0 || enc == ContentEncoding::Identity {
        check_limit(enc, rest, limit).ok();
        return;
    }

    // Compress `rest` ourselves, as one or two members/frames.
    let level = control >> 4;
    let split = if control & 0x80 != 0 {
        usize::from(cut) % (rest.len() + 1)
    } else {
        rest.len()
    };
    let (first, second) = rest.split_at(split);
    let compress = |part: &[u8]| match enc {
        ContentEncoding::Gzip => gzip(part, u32::from(level % 10)),
        _ => zstd(part, i32::from(level % 4) + 1),
    };
    let mut stream = compress(first);
    if !second.is_empty() {
        stream.extend(compress(second));
    }
    match mode {
        1 => {
            let result = check_limit(enc, &stream, limit);
            if rest.len() <= limit {
                assert_eq!(result.as_deref(), Ok(rest), "{enc:?}: round trip");
            } else {
                assert_eq!(
                    result,
                    Err(DecodeError::TooLarge { limit }),
                    "{enc:?}: over the limit"
                );
            }
        }
        2 => {
            // Truncated: never more than the original, and a prefix of it when accepted.
            let at = usize::from(cut) * stream.len() / 256;
            if let Ok(out) = check_limit(enc, &stream[..at], limit) {
                assert!(out.len() <= rest.len());
                assert_eq!(&out[..], &rest[..out.len()], "{enc:?}: truncated stream");
            }
        }
        _ => {
            let at = usize::from(cut) * stream.len() / 256;
            if let Some(b) = stream.get_mut(at) {
                *b ^= 1 << (control & 7);
            }
            check_limit(enc, &stream, limit).ok();
        }
    }
});
