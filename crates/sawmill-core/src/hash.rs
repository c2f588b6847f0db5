//! The stable hash of sawmill's persisted identifiers: 64-bit FNV-1a.
//!
//! Its values are written to disk and sent over the wire (alert fingerprints, lifecycle rule
//! ids, the file shipper's fingerprints and file ids), so it must never change: unlike the
//! standard library's hasher it is the same in every build, process and version.

/// FNV-1a 64, fed with [`Fnv1a64::write`].
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a64(u64);

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv1a64 {
    pub fn new() -> Fnv1a64 {
        Fnv1a64(OFFSET_BASIS)
    }

    /// Adds `bytes` to the hash.
    pub fn write(&mut self, bytes: &[u8]) -> &mut Fnv1a64 {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64::new()
    }
}

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    Fnv1a64::new().write(bytes).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn writing_in_parts_is_writing_the_whole() {
        let mut h = Fnv1a64::new();
        h.write(b"foo").write(b"bar");
        assert_eq!(h.finish(), fnv1a64(b"foobar"));
    }
}
