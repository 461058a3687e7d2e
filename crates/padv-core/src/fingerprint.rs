//! A small stable 64-bit hash (FNV-1a) for cache keys and fingerprints.
//!
//! Written here rather than taken from a crate because the value must never change between
//! releases or platforms (it names files in resumable caches), which `std`'s `DefaultHasher`
//! does not promise, and FNV-1a is a dozen lines.

/// Incremental FNV-1a, 64 bit.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes.
    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }

    /// Feed a string followed by a separator byte, so `("ab","c")` and `("a","bc")` differ.
    pub fn write_str(&mut self, s: &str) -> &mut Self {
        self.write(s.as_bytes()).write(&[0xff])
    }

    /// Feed a length-prefixed byte string, so that `("ab","c")` and `("a","bc")` differ
    /// whatever bytes the parts contain (binary headers, not only text).
    pub fn write_part(&mut self, bytes: &[u8]) -> &mut Self {
        self.write(&(bytes.len() as u64).to_le_bytes()).write(bytes)
    }

    /// Feed token ids (little-endian).
    pub fn write_u32s(&mut self, ids: &[u32]) -> &mut Self {
        for id in ids {
            self.write(&id.to_le_bytes());
        }
        self.write(&[0xfe])
    }

    /// The hash value.
    pub fn finish(&self) -> u64 {
        self.0
    }

    /// The hash as 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Published FNV-1a 64 test vectors: "" -> cbf29ce484222325, "a" -> af63dc4c8601ec8c.
        assert_eq!(Fnv64::new().finish(), 0xcbf29ce484222325);
        assert_eq!(Fnv64::new().write(b"a").finish(), 0xaf63dc4c8601ec8c);
        assert_eq!(Fnv64::new().write(b"foobar").finish(), 0x85944171f73967e8);
    }

    #[test]
    fn separators_matter() {
        let a = Fnv64::new().write_str("ab").write_str("c").finish();
        let b = Fnv64::new().write_str("a").write_str("bc").finish();
        assert_ne!(a, b);
        let a = Fnv64::new().write_part(b"ab\xff").write_part(b"c").finish();
        let b = Fnv64::new().write_part(b"ab").write_part(b"\xffc").finish();
        assert_ne!(a, b);
    }
}
