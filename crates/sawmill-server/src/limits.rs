//! Per-tenant ingest policies (rate limits, redaction) and the free-disk guard.
//!
//! Each tenant's ingest rate is a token bucket (GCRA, from `governor`) over decompressed
//! bytes, refilled at `ingest_bytes_per_sec` up to `ingest_burst_bytes`; a request beyond it
//! is answered `429` with the time after which it would fit, before anything is parsed or
//! written. Redaction rules are compiled once per tenant at start.
//!
//! The disk guard refuses ingest (`507`) while the data directory's file system has less
//! free space than `limits.min_free_disk_bytes`, so the WAL never runs into a full disk in
//! the middle of a write; it looks again at every request, so ingest resumes by itself as
//! soon as space is freed.

use crate::config::{Config, TenantSection};
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};
use parking_lot::RwLock;
use sawmill_core::redact::{Detector, Redactor};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    governor::middleware::NoOpMiddleware<<DefaultClock as Clock>::Instant>,
>;

/// What applies to one tenant's ingest.
pub struct TenantPolicy {
    /// Token bucket in KiB; `None`: unlimited.
    limiter: Option<Limiter>,
    burst_kib: u32,
    /// Applied to every event before it is written; `None`: no redaction.
    pub redactor: Option<Redactor>,
}

/// The policies of every tenant, built from `[tenant_defaults]` and `[tenants.<name>]`.
pub struct TenantPolicies {
    defaults: TenantSection,
    configured: HashMap<String, TenantSection>,
    built: RwLock<HashMap<String, Arc<TenantPolicy>>>,
    clock: DefaultClock,
}

/// A tenant policy that cannot be built, with the config section it comes from.
#[derive(Debug, thiserror::Error)]
#[error("{section}: {problem}")]
pub struct PolicyError {
    pub section: String,
    #[source]
    pub problem: PolicyProblem,
}

/// What is wrong with a tenant policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyProblem {
    #[error(transparent)]
    Tenant(#[from] sawmill_core::tenant::InvalidTenant),
    #[error(transparent)]
    Redaction(#[from] sawmill_core::redact::RedactError),
    #[error("ingest_bytes_per_sec must be at least 1")]
    ZeroRate,
    #[error("ingest_burst_bytes must be at least 1 KiB")]
    ZeroBurst,
}

/// A refusal by the rate limit.
#[derive(Debug, PartialEq)]
pub enum RateLimited {
    /// The bucket is short: retry after this long.
    Wait(Duration),
    /// The request alone is larger than the whole burst: it can never pass.
    LargerThanBurst { burst_bytes: u64 },
}

impl TenantPolicy {
    fn build(c: &TenantSection) -> Result<TenantPolicy, PolicyProblem> {
        let detectors = match &c.redact {
            Some(names) => Detector::parse_list(&names.join(","))?,
            None => Vec::new(),
        };
        let custom: Vec<(String, String)> = c
            .redact_patterns
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let redactor = Redactor::new(&detectors, &custom)?;
        let (limiter, burst_kib) = match c.ingest_bytes_per_sec {
            None | Some(0) => (None, 0),
            Some(rate) => {
                let rate_kib = NonZeroU32::new(rate.div_ceil(1024).min(u64::from(u32::MAX)) as u32)
                    .ok_or(PolicyProblem::ZeroRate)?;
                let burst = c.ingest_burst_bytes.unwrap_or(rate.saturating_mul(2));
                let burst_kib =
                    NonZeroU32::new(burst.div_ceil(1024).min(u64::from(u32::MAX)) as u32)
                        .ok_or(PolicyProblem::ZeroBurst)?;
                let quota = Quota::per_second(rate_kib).allow_burst(burst_kib);
                (Some(RateLimiter::direct(quota)), burst_kib.get())
            }
        };
        Ok(TenantPolicy {
            limiter,
            burst_kib,
            redactor: (!redactor.is_empty()).then_some(redactor),
        })
    }
}

impl TenantPolicies {
    /// Compiles every configured tenant's policy (errors name the tenant and the setting).
    pub fn new(config: &Config) -> Result<TenantPolicies, PolicyError> {
        let mut built = HashMap::new();
        let mut configured = HashMap::new();
        TenantPolicy::build(&config.tenant_defaults).map_err(|problem| PolicyError {
            section: "[tenant_defaults]".into(),
            problem,
        })?;
        for (name, c) in &config.tenants {
            let in_section = |problem| PolicyError {
                section: format!("[tenants.{name}]"),
                problem,
            };
            crate::keys::validate_tenant(name).map_err(|e| in_section(PolicyProblem::Tenant(e)))?;
            let merged = c.over(&config.tenant_defaults);
            let policy = TenantPolicy::build(&merged).map_err(in_section)?;
            built.insert(name.clone(), Arc::new(policy));
            configured.insert(name.clone(), merged);
        }
        Ok(TenantPolicies {
            defaults: config.tenant_defaults.clone(),
            configured,
            built: RwLock::new(built),
            clock: DefaultClock::default(),
        })
    }

    /// The policy of `tenant` (tenants without a section of their own get the defaults, each
    /// with its own bucket).
    pub fn get(&self, tenant: &str) -> Arc<TenantPolicy> {
        if let Some(p) = self.built.read().get(tenant) {
            return p.clone();
        }
        let config = self.configured.get(tenant).unwrap_or(&self.defaults);
        // the defaults compiled once already in `new`, so this cannot fail
        let policy = match TenantPolicy::build(config) {
            Ok(p) => Arc::new(p),
            Err(_) => Arc::new(TenantPolicy {
                limiter: None,
                burst_kib: 0,
                redactor: None,
            }),
        };
        self.built
            .write()
            .entry(tenant.to_string())
            .or_insert(policy)
            .clone()
    }

    /// Takes `bytes` from the tenant's bucket, or says when to retry. A request larger than
    /// the whole burst is refused outright (charging it only the burst would let large
    /// requests through at many times the rate).
    pub fn charge(&self, policy: &TenantPolicy, bytes: usize) -> Result<(), RateLimited> {
        let Some(limiter) = &policy.limiter else {
            return Ok(());
        };
        let too_large = RateLimited::LargerThanBurst {
            burst_bytes: u64::from(policy.burst_kib) * 1024,
        };
        let kib = bytes.div_ceil(1024).max(1);
        if kib > policy.burst_kib as usize {
            return Err(too_large);
        }
        let Some(n) = NonZeroU32::new(kib as u32) else {
            return Ok(());
        };
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(RateLimited::Wait(
                not_until.wait_time_from(self.clock.now()),
            )),
            Err(_) => Err(too_large),
        }
    }
}

/// Refuses ingest while the data directory's file system is short of space.
pub struct DiskGuard {
    path: PathBuf,
    min_free: u64,
}

impl DiskGuard {
    pub fn new(path: &Path, min_free: u64) -> DiskGuard {
        DiskGuard {
            path: path.to_path_buf(),
            min_free,
        }
    }

    /// Free bytes available to the server on the data directory's file system.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        free_bytes(&self.path)
    }

    /// `Err(free)` when less than the threshold is free; `Ok(free)` otherwise (or when the
    /// check itself fails: the WAL still reports a full disk on its own).
    pub fn check(&self) -> Result<u64, u64> {
        if self.min_free == 0 {
            return Ok(u64::MAX);
        }
        match self.free_bytes() {
            Ok(free) if free < self.min_free => Err(free),
            Ok(free) => Ok(free),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read free disk space");
                Ok(u64::MAX)
            }
        }
    }

    pub fn threshold(&self) -> u64 {
        self.min_free
    }
}

/// Free bytes for unprivileged users on the file system holding `path` (statvfs).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `stat` points to writable memory of the
    // right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(c.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so the struct is initialized.
    let stat = unsafe { stat.assume_init() };
    // both are u64 on 64-bit Linux; the casts keep 32-bit targets building
    #[allow(clippy::unnecessary_cast)]
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(toml_text: &str) -> TenantPolicies {
        let config: Config = toml::from_str(toml_text).unwrap();
        TenantPolicies::new(&config).unwrap()
    }

    #[test]
    fn each_tenant_has_its_own_bucket() {
        let p = policies(
            "[tenant_defaults]\ningest_bytes_per_sec = 10240\ningest_burst_bytes = 20480\n\
             [tenants.big]\ningest_bytes_per_sec = 1048576\n",
        );
        let a = p.get("a");
        assert!(p.charge(&a, 20 * 1024).is_ok());
        let RateLimited::Wait(wait) = p.charge(&a, 1024).unwrap_err() else {
            panic!("expected a wait");
        };
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        // larger than the whole burst: never passes
        assert_eq!(
            p.charge(&p.get("c"), 21 * 1024).unwrap_err(),
            RateLimited::LargerThanBurst {
                burst_bytes: 20 * 1024
            }
        );
        // another tenant on the defaults is not affected; a configured one has its own rate
        assert!(p.charge(&p.get("b"), 20 * 1024).is_ok());
        let big = p.get("big");
        assert!(p.charge(&big, 1 << 20).is_ok());
        // unlimited without a rate
        let open = policies("");
        assert!(open.charge(&open.get("x"), 1 << 30).is_ok());
    }

    #[test]
    fn bad_policies_name_the_tenant() {
        let config: Config = toml::from_str("[tenants.acme]\nredact = [\"emails\"]\n").unwrap();
        let err = TenantPolicies::new(&config).err().unwrap().to_string();
        assert!(
            err.contains("[tenants.acme]") && err.contains("emails"),
            "{err}"
        );
        let config: Config =
            toml::from_str("[tenants.acme.redact_patterns]\nticket = \"(\"\n").unwrap();
        assert!(TenantPolicies::new(&config)
            .err()
            .unwrap()
            .to_string()
            .contains("ticket"));
    }

    #[test]
    fn free_space_is_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(DiskGuard::new(dir.path(), u64::MAX).check().is_err());
        assert!(DiskGuard::new(dir.path(), 1).check().is_ok());
    }
}
