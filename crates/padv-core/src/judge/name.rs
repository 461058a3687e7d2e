//! [`JudgeName`]: the name a judge's scores are stored under, as a `Copy` handle.
//!
//! Score specifications ([`crate::score::ScoreSpec`]) are small `Copy` values that grids
//! create by the hundred and compare for equality; a judge cell has to name its judge
//! without giving that up. Names are therefore interned: each distinct name is stored once
//! for the life of the process and the handle is a `&'static str`. Names are validated
//! (at most [`MAX_LEN`] characters of `[A-Za-z0-9._-]`), so the set stays small and every
//! name prints safely in labels (`judge:NAME/min`), file names and tables.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest judge name accepted.
pub const MAX_LEN: usize = 64;

/// A validated, interned judge name (compares and hashes by its text).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JudgeName(&'static str);

/// A judge name that is empty, too long, or has characters other than `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid judge name {0:?}: use 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")]
pub struct InvalidJudgeName(pub String);

fn interned() -> &'static Mutex<HashSet<&'static str>> {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

impl JudgeName {
    /// Validates and interns `name`.
    pub fn new(name: &str) -> Result<JudgeName, InvalidJudgeName> {
        Self::check(name)?;
        // A poisoned lock only means another thread panicked while inserting; the set itself
        // is still a valid set of leaked strings.
        let mut set = interned()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&s) = set.get(name) {
            return Ok(JudgeName(s));
        }
        let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
        set.insert(leaked);
        Ok(JudgeName(leaked))
    }

    /// Whether `name` is a valid judge name (without interning it).
    pub fn check(name: &str) -> Result<(), InvalidJudgeName> {
        let ok = !name.is_empty()
            && name.chars().count() <= MAX_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(())
        } else {
            Err(InvalidJudgeName(name.to_string()))
        }
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Debug for JudgeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Display for JudgeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::str::FromStr for JudgeName {
    type Err = InvalidJudgeName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JudgeName::new(s)
    }
}

impl Serialize for JudgeName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for JudgeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        JudgeName::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_and_validation() {
        let a = JudgeName::new("thinkprm-7b").unwrap();
        let b = JudgeName::new(&String::from("thinkprm-7b")).unwrap();
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "interned once");
        assert_ne!(a, JudgeName::new("wildreward").unwrap());
        for bad in ["", "a b", "judge:x", "x/y", &"x".repeat(65)] {
            assert!(JudgeName::new(bad).is_err(), "{bad:?}");
        }
        assert!(JudgeName::new(&"x".repeat(64)).is_ok());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"thinkprm-7b\"");
        assert_eq!(serde_json::from_str::<JudgeName>(&json).unwrap(), a);
        assert!(serde_json::from_str::<JudgeName>("\"a b\"").is_err());
    }
}
