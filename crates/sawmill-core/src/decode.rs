//! Request body limits and decompression (`Content-Encoding`).
//!
//! Decompression streams and stops as soon as the output would pass the
//! limit, so a gzip or zstd bomb costs at most about `limit` bytes of work and
//! memory before it is refused.

use std::borrow::Cow;
use std::io::Read;

use thiserror::Error;

/// Size limits for ingest bodies and the events in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body as sent (possibly compressed). Default 16 MiB.
    pub max_body_bytes: usize,
    /// Largest body after decompression. Default 64 MiB.
    pub max_decompressed_bytes: usize,
    /// Longest line. Default 1 MiB.
    pub max_line_bytes: usize,
    /// Most leaf values (scalars and empty containers) in one event. Default
    /// 1000.
    pub max_fields: usize,
    /// Deepest nesting of objects and arrays, the event itself being level 1.
    /// Default 32.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_line_bytes: 1 << 20,
            max_fields: 1000,
            max_depth: 32,
        }
    }
}

/// Why a request body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("unsupported content-encoding {0:?}: send the body uncompressed (identity) or with gzip or zstd")]
    Unsupported(String),
    #[error("body is larger than {limit} bytes once decompressed: send smaller batches")]
    TooLarge { limit: usize },
    #[error("body is {size} bytes; the limit is {limit}: send smaller batches")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("body could not be decompressed ({0}): check that it is complete and matches its content-encoding")]
    Corrupt(String),
}

impl DecodeError {
    /// True when the body is refused for its size (413 over HTTP) rather than its content.
    pub fn too_large(&self) -> bool {
        matches!(
            self,
            DecodeError::TooLarge { .. } | DecodeError::BodyTooLarge { .. }
        )
    }
}

/// A body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentEncoding {
    #[default]
    Identity,
    Gzip,
    Zstd,
}

impl ContentEncoding {
    /// Reads a `Content-Encoding` header value: `identity` (or empty), `gzip`
    /// (or `x-gzip`), `zstd`; case-insensitive.
    pub fn parse(s: &str) -> Result<Self, DecodeError> {
        let t = s.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("identity") {
            Ok(ContentEncoding::Identity)
        } else if t.eq_ignore_ascii_case("gzip") || t.eq_ignore_ascii_case("x-gzip") {
            Ok(ContentEncoding::Gzip)
        } else if t.eq_ignore_ascii_case("zstd") {
            Ok(ContentEncoding::Zstd)
        } else {
            Err(DecodeError::Unsupported(t.to_owned()))
        }
    }

    /// The header value naming this encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentEncoding::Identity => "identity",
            ContentEncoding::Gzip => "gzip",
            ContentEncoding::Zstd => "zstd",
        }
    }
}

impl std::str::FromStr for ContentEncoding {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, DecodeError> {
        ContentEncoding::parse(s)
    }
}

/// Largest zstd window accepted: 8 MiB, as RFC 9659 asks of the `zstd`
/// content-encoding. Caps the decoder's memory whatever a frame declares.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Decodes a body. Identity bodies are borrowed; gzip (including
/// multi-member) and zstd (including multi-frame) are streamed into a buffer
/// that never grows past `limit`.
pub fn decompress(
    enc: ContentEncoding,
    body: &[u8],
    limit: usize,
) -> Result<Cow<'_, [u8]>, DecodeError> {
    match enc {
        ContentEncoding::Identity if body.len() > limit => Err(DecodeError::TooLarge { limit }),
        ContentEncoding::Identity => Ok(Cow::Borrowed(body)),
        // An empty body decodes to nothing whatever its encoding.
        _ if body.is_empty() => Ok(Cow::Borrowed(body)),
        ContentEncoding::Gzip => {
            let reader = flate2::bufread::MultiGzDecoder::new(body);
            read_limited(reader, body.len(), limit, "gzip").map(Cow::Owned)
        }
        ContentEncoding::Zstd => {
            let mut reader = zstd::stream::read::Decoder::with_buffer(body)
                .map_err(|e| DecodeError::Corrupt(format!("zstd: {e}")))?;
            reader
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| DecodeError::Corrupt(format!("zstd: {e}")))?;
            read_limited(reader, body.len(), limit, "zstd").map(Cow::Owned)
        }
    }
}

/// Checks a request body against `max_body_bytes` and decompresses it within
/// `max_decompressed_bytes`.
pub fn decode_body<'a>(
    enc: ContentEncoding,
    body: &'a [u8],
    limits: &Limits,
) -> Result<Cow<'a, [u8]>, DecodeError> {
    if body.len() > limits.max_body_bytes {
        return Err(DecodeError::BodyTooLarge {
            size: body.len(),
            limit: limits.max_body_bytes,
        });
    }
    decompress(enc, body, limits.max_decompressed_bytes)
}

/// Reads `reader` to the end, refusing as soon as more than `limit` bytes
/// come out. The buffer's capacity never exceeds `limit`.
fn read_limited(
    mut reader: impl Read,
    input_len: usize,
    limit: usize,
    name: &str,
) -> Result<Vec<u8>, DecodeError> {
    const CHUNK: usize = 64 * 1024;
    // Logs usually compress 5-10x; start there and grow by doubling.
    let mut out: Vec<u8> = Vec::with_capacity(input_len.saturating_mul(4).max(CHUNK).min(limit));
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(name, &e)),
        };
        let needed = out.len() + n;
        if needed > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        if needed > out.capacity() {
            let target = out.capacity().saturating_mul(2).max(needed).min(limit);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

fn corrupt(name: &str, e: &std::io::Error) -> DecodeError {
    let text = e.to_string();
    if name == "zstd" && text.contains("memory") {
        return DecodeError::Corrupt(format!(
            "zstd: the frame needs a window over 8 MiB ({text}); compress with a window of at most 8 MiB (RFC 9659)"
        ));
    }
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return DecodeError::Corrupt(format!("{name}: data ends early ({text})"));
    }
    DecodeError::Corrupt(format!("{name}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
    }

    const MIB: usize = 1 << 20;

    #[test]
    fn parses_content_encoding() {
        assert_eq!(ContentEncoding::parse(""), Ok(ContentEncoding::Identity));
        assert_eq!(
            ContentEncoding::parse("identity"),
            Ok(ContentEncoding::Identity)
        );
        assert_eq!(ContentEncoding::parse("GZIP"), Ok(ContentEncoding::Gzip));
        assert_eq!(
            ContentEncoding::parse(" x-gzip "),
            Ok(ContentEncoding::Gzip)
        );
        assert_eq!(ContentEncoding::parse("zstd"), Ok(ContentEncoding::Zstd));
        let err = ContentEncoding::parse("br").unwrap_err();
        assert_eq!(err, DecodeError::Unsupported("br".into()));
        let text = err.to_string();
        for word in ["\"br\"", "gzip", "zstd", "identity"] {
            assert!(text.contains(word), "{text}");
        }
        assert_eq!("zstd".parse::<ContentEncoding>(), Ok(ContentEncoding::Zstd));
    }

    #[test]
    fn identity_is_borrowed() {
        let body = b"{\"a\":1}\n";
        let out = decompress(ContentEncoding::Identity, body, MIB).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(&*out, body);
        assert_eq!(
            decompress(ContentEncoding::Identity, body, 3),
            Err(DecodeError::TooLarge { limit: 3 })
        );
    }

    #[test]
    fn gzip_round_trip_and_multi_member() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let out = decompress(ContentEncoding::Gzip, &gzip(&data), 64 * MIB)
            .unwrap()
            .into_owned();
        assert_eq!(&*out, &data[..]);

        let mut two = gzip(b"first\n");
        two.extend(gzip(b"second\n"));
        let out = decompress(ContentEncoding::Gzip, &two, MIB).unwrap();
        assert_eq!(&*out, b"first\nsecond\n");
    }

    #[test]
    fn zstd_round_trip_and_multi_frame() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let out = decompress(ContentEncoding::Zstd, &zstd(&data), 64 * MIB)
            .unwrap()
            .into_owned();
        assert_eq!(&*out, &data[..]);

        let mut two = zstd(b"first\n");
        two.extend(zstd(b"second\n"));
        let out = decompress(ContentEncoding::Zstd, &two, MIB).unwrap();
        assert_eq!(&*out, b"first\nsecond\n");
    }

    #[test]
    fn exact_limit_is_allowed() {
        let data = vec![b'x'; 100_000];
        assert_eq!(
            decompress(ContentEncoding::Gzip, &gzip(&data), 100_000)
                .unwrap()
                .len(),
            100_000
        );
        assert_eq!(
            decompress(ContentEncoding::Gzip, &gzip(&data), 99_999),
            Err(DecodeError::TooLarge { limit: 99_999 })
        );
        assert_eq!(
            decompress(ContentEncoding::Zstd, &zstd(&data), 100_000)
                .unwrap()
                .len(),
            100_000
        );
        assert_eq!(
            decompress(ContentEncoding::Zstd, &zstd(&data), 99_999),
            Err(DecodeError::TooLarge { limit: 99_999 })
        );
    }

    /// Streams 1 GiB of zeros through an encoder without holding it.
    fn bomb(mut enc: impl Write) {
        let zeros = vec![0u8; MIB];
        for _ in 0..1024 {
            enc.write_all(&zeros).unwrap();
        }
    }

    #[test]
    fn gzip_bomb_is_refused_quickly() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        bomb(&mut enc);
        let body = enc.finish().unwrap();
        eprintln!("gzip bomb: {} bytes", body.len());
        assert!(body.len() < 16 * MIB, "bomb is {} bytes", body.len());
        let start = Instant::now();
        let err = decompress(ContentEncoding::Gzip, &body, 64 * MIB).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { limit: 64 * MIB });
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn zstd_bomb_is_refused_quickly() {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        bomb(&mut enc);
        let body = enc.finish().unwrap();
        eprintln!("zstd bomb: {} bytes", body.len());
        assert!(body.len() < MIB, "bomb is {} bytes", body.len());
        let start = Instant::now();
        let err = decompress(ContentEncoding::Zstd, &body, 64 * MIB).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { limit: 64 * MIB });
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn truncated_and_corrupt_bodies() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let gz = gzip(&data);
        for cut in [1, 5, 10, gz.len() / 2, gz.len() - 4, gz.len() - 1] {
            let err = decompress(ContentEncoding::Gzip, &gz[..cut], 64 * MIB).unwrap_err();
            assert!(matches!(err, DecodeError::Corrupt(_)), "cut {cut}: {err:?}");
            assert!(err.to_string().contains("gzip"), "{err}");
        }
        let zs = zstd(&data);
        for cut in [1, 5, zs.len() / 2, zs.len() - 1] {
            let err = decompress(ContentEncoding::Zstd, &zs[..cut], 64 * MIB).unwrap_err();
            assert!(matches!(err, DecodeError::Corrupt(_)), "cut {cut}: {err:?}");
        }
        for enc in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            let err = decompress(enc, b"{\"plain\": \"json\"}\n", MIB).unwrap_err();
            assert!(matches!(err, DecodeError::Corrupt(_)), "{enc:?}: {err:?}");
        }
        let mut flipped = gz.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert!(decompress(ContentEncoding::Gzip, &flipped, 64 * MIB).is_err());
    }

    #[test]
    fn decode_body_applies_both_limits() {
        let limits = Limits {
            max_body_bytes: 1000,
            max_decompressed_bytes: 5000,
            ..Limits::default()
        };
        let small = vec![b'a'; 4000];
        assert_eq!(
            decode_body(ContentEncoding::Gzip, &gzip(&small), &limits)
                .unwrap()
                .len(),
            4000
        );
        let big = vec![b'a'; 6000];
        assert_eq!(
            decode_body(ContentEncoding::Zstd, &zstd(&big), &limits),
            Err(DecodeError::TooLarge { limit: 5000 })
        );
        let err = decode_body(ContentEncoding::Identity, &big, &limits).unwrap_err();
        assert_eq!(
            err,
            DecodeError::BodyTooLarge {
                size: 6000,
                limit: 1000
            }
        );
        assert_eq!(
            err.to_string(),
            "body is 6000 bytes; the limit is 1000: send smaller batches"
        );
    }

    #[test]
    fn empty_body_decodes_to_nothing() {
        for enc in [
            ContentEncoding::Identity,
            ContentEncoding::Gzip,
            ContentEncoding::Zstd,
        ] {
            assert_eq!(decompress(enc, b"", MIB).unwrap().len(), 0);
        }
    }
}
