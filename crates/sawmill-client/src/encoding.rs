//! Request body compression: what a batch is compressed with before it is sent, and the
//! `Content-Encoding` the server reads it with.

use bytes::Bytes;
use std::io::Write;

/// The compression of a request body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// Sent as it is.
    Identity,
    Gzip,
    /// zstd level 3: about gzip's ratio at several times its speed.
    #[default]
    Zstd,
}

/// A body that could not be compressed.
#[derive(Debug, thiserror::Error)]
#[error("{encoding} compression failed")]
pub struct CompressError {
    pub encoding: &'static str,
    #[source]
    pub source: std::io::Error,
}

impl Encoding {
    /// The `Content-Encoding` header value; `None` for an uncompressed body.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Zstd => Some("zstd"),
        }
    }

    /// The encoding a `Content-Encoding` value names (`identity` or none: uncompressed).
    pub fn from_header(value: Option<&str>) -> Option<Encoding> {
        match value.map(str::trim) {
            None | Some("") | Some("identity") => Some(Encoding::Identity),
            Some("gzip") => Some(Encoding::Gzip),
            Some("zstd") => Some(Encoding::Zstd),
            Some(_) => None,
        }
    }

    /// Compresses `body`; an uncompressed body is copied once into the shared buffer.
    pub fn compress(self, body: &[u8]) -> Result<Bytes, CompressError> {
        let failed = |source| CompressError {
            encoding: self.header().unwrap_or("identity"),
            source,
        };
        match self {
            Encoding::Identity => Ok(Bytes::copy_from_slice(body)),
            Encoding::Zstd => zstd::bulk::compress(body, 3)
                .map(Bytes::from)
                .map_err(failed),
            Encoding::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::default(),
                );
                enc.write_all(body)
                    .and_then(|()| enc.finish())
                    .map(Bytes::from)
                    .map_err(failed)
            }
        }
    }

    /// Compresses `body`, taking it over when it is sent uncompressed (no copy).
    pub fn compress_owned(self, body: Vec<u8>) -> Result<Bytes, CompressError> {
        match self {
            Encoding::Identity => Ok(Bytes::from(body)),
            _ => self.compress(&body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_encoding_round_trips() {
        let body = b"{\"message\":\"hello\"}\n".repeat(100);
        let zstd = Encoding::Zstd.compress(&body).unwrap();
        assert_eq!(zstd::decode_all(&zstd[..]).unwrap(), body);
        let gzip = Encoding::Gzip.compress(&body).unwrap();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        assert_eq!(
            Encoding::Identity.compress_owned(body.clone()).unwrap(),
            body
        );
        for e in [Encoding::Identity, Encoding::Gzip, Encoding::Zstd] {
            assert_eq!(Encoding::from_header(e.header()), Some(e));
        }
        assert_eq!(Encoding::from_header(Some("br")), None);
    }
}
