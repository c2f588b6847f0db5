//! On-disk encoding: segment file names, the segment header and record framing.
//!
//! See the crate documentation for the layout. Everything is little-endian and
//! checksummed with CRC-32 (IEEE polynomial, via `crc32fast`).

use crate::error::HeaderDamage;

/// Magic bytes opening every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"SAWMWAL\0";
/// Current on-disk format version.
pub(crate) const VERSION: u32 = 1;
/// Segment header: magic (8), version (4), first_seq (8), crc of the preceding 20 bytes (4).
pub(crate) const HEADER_LEN: usize = 24;
/// Record header: len (4), crc (4), first_seq (8), count (4).
pub(crate) const RECORD_HEADER_LEN: usize = 20;

const SEGMENT_SUFFIX: &str = ".wal";
/// Suffix of a segment being created; such files are removed on open.
pub(crate) const TMP_SUFFIX: &str = ".wal.tmp";

/// `<first_seq:020>.wal`
pub(crate) fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

/// Parses a segment file name; `None` for anything that is not exactly
/// twenty digits followed by `.wal`.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

pub(crate) fn encode_header(first_seq: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Validates a segment header against the seq from the file name. `buf` holds
/// the first bytes of the file (fewer than `HEADER_LEN` if the file is short).
pub(crate) fn check_header(buf: &[u8], name_seq: u64) -> Result<(), HeaderDamage> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err(HeaderDamage::Short);
    };
    if h[0..8] != MAGIC {
        return Err(HeaderDamage::BadMagic);
    }
    if crc32fast::hash(&h[0..20]) != le_u32(&h[20..24]) {
        return Err(HeaderDamage::ChecksumMismatch);
    }
    let version = le_u32(&h[8..12]);
    if version != VERSION {
        return Err(HeaderDamage::UnsupportedVersion(version));
    }
    let header_seq = le_u64(&h[12..20]);
    if header_seq != name_seq {
        return Err(HeaderDamage::SeqMismatch {
            name: name_seq,
            header: header_seq,
        });
    }
    Ok(())
}

/// Decoded record header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordHeader {
    pub len: u32,
    pub crc: u32,
    pub first_seq: u64,
    pub count: u32,
}

impl RecordHeader {
    pub(crate) fn decode(b: &[u8; RECORD_HEADER_LEN]) -> Self {
        RecordHeader {
            len: le_u32(&b[0..4]),
            crc: le_u32(&b[4..8]),
            first_seq: le_u64(&b[8..16]),
            count: le_u32(&b[16..20]),
        }
    }

    /// Seq after the last event of the record; saturates on corrupt input.
    pub(crate) fn end_seq(&self) -> u64 {
        self.first_seq.saturating_add(u64::from(self.count))
    }

    /// Starts the checksum of this record: the payload is fed afterwards.
    pub(crate) fn crc_hasher(&self) -> crc32fast::Hasher {
        seq_hasher(self.first_seq, self.count)
    }
}

/// Hasher already fed with the (first_seq, count) part of a record checksum.
pub(crate) fn seq_hasher(first_seq: u64, count: u32) -> crc32fast::Hasher {
    let mut h = crc32fast::Hasher::new();
    h.update(&first_seq.to_le_bytes());
    h.update(&count.to_le_bytes());
    h
}

/// Encodes a record header. `payload_crc` is a hasher fed with the payload
/// only (computed by the appending thread); it is combined with the seq part
/// so the writer never rehashes the payload.
pub(crate) fn encode_record_header(
    first_seq: u64,
    count: u32,
    payload_len: u32,
    payload_crc: &crc32fast::Hasher,
) -> [u8; RECORD_HEADER_LEN] {
    let mut h = seq_hasher(first_seq, count);
    h.combine(payload_crc);
    let mut b = [0u8; RECORD_HEADER_LEN];
    b[0..4].copy_from_slice(&payload_len.to_le_bytes());
    b[4..8].copy_from_slice(&h.finalize().to_le_bytes());
    b[8..16].copy_from_slice(&first_seq.to_le_bytes());
    b[16..20].copy_from_slice(&count.to_le_bytes());
    b
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(42), "00000000000000000042.wal");
        assert_eq!(parse_segment_file_name(&segment_file_name(42)), Some(42));
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("42.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.wal"), None);
        assert_eq!(parse_segment_file_name("99999999999999999999.wal"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000042.wal.tmp"),
            None
        );
    }

    #[test]
    fn header_checks() {
        let h = encode_header(7);
        assert_eq!(check_header(&h, 7), Ok(()));
        assert_eq!(check_header(&h[..10], 7), Err(HeaderDamage::Short));
        assert_eq!(
            check_header(&h, 8),
            Err(HeaderDamage::SeqMismatch { name: 8, header: 7 })
        );
        let mut bad = h;
        bad[0] ^= 1;
        assert_eq!(check_header(&bad, 7), Err(HeaderDamage::BadMagic));
        let mut bad = h;
        bad[13] ^= 1;
        assert_eq!(check_header(&bad, 7), Err(HeaderDamage::ChecksumMismatch));
    }

    #[test]
    fn combined_crc_matches_direct_crc() {
        let payload = b"hello wal";
        let mut p = crc32fast::Hasher::new();
        p.update(payload);
        let enc = encode_record_header(5, 3, payload.len() as u32, &p);
        let hdr = RecordHeader::decode(&enc);
        let mut direct = hdr.crc_hasher();
        direct.update(payload);
        assert_eq!(hdr.crc, direct.finalize());
        assert_eq!((hdr.len, hdr.first_seq, hdr.count), (9, 5, 3));
    }
}
