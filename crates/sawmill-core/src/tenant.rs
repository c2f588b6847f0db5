//! Tenant names: every event belongs to one; they appear in archive object keys
//! (`tenant=<name>/…`), so they are restricted to characters safe in paths and URLs.

/// The tenant of events when no key or header names one.
pub const DEFAULT_TENANT: &str = "default";
/// Longest tenant name.
pub const MAX_TENANT_LEN: usize = 64;

/// A tenant name that breaks the rules of [`check_tenant`] (its first 80 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a tenant name: use 1 to {MAX_TENANT_LEN} characters a-z, 0-9, _ and -, starting with a letter or a digit")]
pub struct InvalidTenant(pub String);

/// Checks a tenant name: 1 to 64 characters of `[a-z0-9_-]`, starting with a letter or a
/// digit.
pub fn check_tenant(name: &str) -> Result<(), InvalidTenant> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TENANT_LEN
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(InvalidTenant(name.chars().take(80).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_checked() {
        for good in ["default", "acme-prod", "t_1", "0abc"] {
            assert!(check_tenant(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Acme",
            "-x",
            "_x",
            "a/b",
            "tenant=x",
            "é",
            &"a".repeat(65),
        ] {
            assert!(check_tenant(bad).is_err(), "{bad}");
        }
    }
}
