//! S3 lifecycle tiers of the archive: the `[archive.lifecycle]` settings, their validation, and
//! the one lifecycle rule (in the JSON shape of `PutBucketLifecycleConfiguration`) that moves
//! archive objects to cheaper storage classes as they age, expires them, and aborts incomplete
//! multipart uploads.

use sawmill_core::fnv1a64;
use serde::{Deserialize, Serialize};

/// Days S3 bills at least for an object in STANDARD_IA, and the earliest day after creation a
/// transition to STANDARD_IA is accepted.
const IA_MIN_DAYS: u32 = 30;
/// Days S3 bills at least for an object in GLACIER_IR.
const GLACIER_IR_MIN_DAYS: u32 = 90;
/// Days S3 bills at least for an object in DEEP_ARCHIVE.
const DEEP_ARCHIVE_MIN_DAYS: u32 = 180;

/// The base of the rule ID; the prefix is appended after a `:`.
const RULE_ID_BASE: &str = "sawmill-tiers";
/// S3's limit on the length of a lifecycle rule ID.
const MAX_RULE_ID_LEN: usize = 255;

/// `[archive.lifecycle]`: when archive objects move to cheaper storage classes and when they
/// are deleted, counted in days since each object was written. `0` turns a step off.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSettings {
    /// Whether sawmill installs and updates its lifecycle rule on the bucket. When `false`,
    /// the bucket's lifecycle is left alone and the other settings are not used.
    pub manage: bool,
    /// Days after which objects move to STANDARD_IA (at least 30; `0`: this tier is not used).
    pub infrequent_access_after_days: u32,
    /// Days after which objects move to GLACIER_IR (`0`: this tier is not used).
    pub glacier_ir_after_days: u32,
    /// Days after which objects move to DEEP_ARCHIVE (`0`: this tier is not used).
    pub deep_archive_after_days: u32,
    /// Days after which objects are deleted (`0`: never expire).
    pub expire_after_days: u32,
    /// Days after which multipart uploads that were never completed are aborted and their
    /// parts deleted (`0`: no abort rule).
    pub abort_incomplete_multipart_after_days: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            manage: true,
            infrequent_access_after_days: 30,
            glacier_ir_after_days: 90,
            deep_archive_after_days: 180,
            expire_after_days: 400,
            abort_incomplete_multipart_after_days: 7,
        }
    }
}

/// One transition tier: its setting, its storage class and its day (`0`: not used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    /// The setting under `[archive.lifecycle]`.
    pub field: &'static str,
    pub storage_class: &'static str,
    pub days: u32,
}

/// Settings S3 would refuse or that make no sense; each message names the setting and what to
/// do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error(
        "archive.lifecycle.infrequent_access_after_days = {days}: S3 refuses transitions to \
         STANDARD_IA earlier than {IA_MIN_DAYS} days after an object is written; set it to \
         {IA_MIN_DAYS} or more, or to 0 to skip the STANDARD_IA tier"
    )]
    InfrequentAccessTooEarly { days: u32 },
    #[error(
        "archive.lifecycle.{} = {} must be greater than archive.lifecycle.{} = {}: objects move \
         to STANDARD_IA, then GLACIER_IR, then DEEP_ARCHIVE, each step later than the one \
         before; raise it above {}, or set it to 0 to skip the {} tier",
        tier.field, tier.days, before.field, before.days, before.days, tier.storage_class
    )]
    TiersOutOfOrder { tier: Tier, before: Tier },
    #[error(
        "archive.lifecycle.{} = {} is only {} days after \
         archive.lifecycle.infrequent_access_after_days = {ia_days}: S3 requires objects to stay \
         at least {IA_MIN_DAYS} days in STANDARD_IA before a transition to a Glacier class; set \
         it to {} or more, or to 0 to skip the {} tier",
        glacier.field, glacier.days, glacier.days - ia_days, ia_days.saturating_add(IA_MIN_DAYS),
        glacier.storage_class
    )]
    GlacierTooSoonAfterInfrequentAccess { glacier: Tier, ia_days: u32 },
    #[error(
        "archive.lifecycle.expire_after_days = {expire_days} must be greater than \
         archive.lifecycle.{} = {}: objects would expire before or when they move to {}; raise \
         it above {}, set it to 0 to never expire, or set {} to 0",
        last.field, last.days, last.storage_class, last.days, last.field
    )]
    ExpiryBeforeLastTier { expire_days: u32, last: Tier },
}

impl LifecycleSettings {
    /// The transition tiers in their required order, used or not.
    fn tiers(&self) -> [Tier; 3] {
        [
            Tier {
                field: "infrequent_access_after_days",
                storage_class: "STANDARD_IA",
                days: self.infrequent_access_after_days,
            },
            Tier {
                field: "glacier_ir_after_days",
                storage_class: "GLACIER_IR",
                days: self.glacier_ir_after_days,
            },
            Tier {
                field: "deep_archive_after_days",
                storage_class: "DEEP_ARCHIVE",
                days: self.deep_archive_after_days,
            },
        ]
    }

    /// The tiers in use (a day above 0), in their required order.
    fn used_tiers(&self) -> Vec<Tier> {
        self.tiers().into_iter().filter(|t| t.days > 0).collect()
    }

    /// The expiry day, if objects expire.
    fn expiry(&self) -> Option<u32> {
        (self.expire_after_days > 0).then_some(self.expire_after_days)
    }

    /// Checks the settings. `Err` for settings S3 would refuse or that make no sense, naming
    /// the setting and what to do; `Ok` with one readable sentence per legal but costly choice
    /// (objects leaving a storage class before its minimum billed duration).
    ///
    /// When `manage` is `false` the settings are not used and nothing is checked.
    pub fn validate(&self) -> Result<Vec<String>, LifecycleError> {
        if !self.manage {
            return Ok(Vec::new());
        }
        self.check_infrequent_access_minimum()?;
        let used = self.used_tiers();
        check_tier_order(&used)?;
        self.check_stay_in_infrequent_access(&used)?;
        self.check_expiry_after_tiers(&used)?;
        Ok(self.early_deletion_warnings())
    }

    /// S3 refuses STANDARD_IA before day 30.
    fn check_infrequent_access_minimum(&self) -> Result<(), LifecycleError> {
        let days = self.infrequent_access_after_days;
        if days > 0 && days < IA_MIN_DAYS {
            return Err(LifecycleError::InfrequentAccessTooEarly { days });
        }
        Ok(())
    }

    /// S3 keeps objects 30 days in STANDARD_IA before a Glacier class.
    fn check_stay_in_infrequent_access(&self, used: &[Tier]) -> Result<(), LifecycleError> {
        let ia_days = self.infrequent_access_after_days;
        if ia_days == 0 {
            return Ok(());
        }
        // The first Glacier tier after STANDARD_IA; later ones are later still.
        match used.iter().find(|t| t.days > ia_days) {
            Some(&glacier) if glacier.days - ia_days < IA_MIN_DAYS => {
                Err(LifecycleError::GlacierTooSoonAfterInfrequentAccess { glacier, ia_days })
            }
            _ => Ok(()),
        }
    }

    /// Objects expire after their last move, if they expire.
    fn check_expiry_after_tiers(&self, used: &[Tier]) -> Result<(), LifecycleError> {
        match (self.expiry(), used.last()) {
            (Some(expire_days), Some(&last)) if expire_days <= last.days => {
                Err(LifecycleError::ExpiryBeforeLastTier { expire_days, last })
            }
            _ => Ok(()),
        }
    }

    /// One sentence per storage class objects leave (by a move or by expiry) before its
    /// minimum billed duration.
    fn early_deletion_warnings(&self) -> Vec<String> {
        [
            self.early_exit_from_infrequent_access(),
            self.early_exit_from_glacier_ir(),
            self.early_exit_from_deep_archive(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// STANDARD_IA as the only tier, with expiry less than 30 days after it.
    fn early_exit_from_infrequent_access(&self) -> Option<String> {
        if self.glacier_ir_after_days > 0 || self.deep_archive_after_days > 0 {
            return None;
        }
        let ia = self.infrequent_access_after_days;
        let (stay, expire) = self.early_expiry(ia, IA_MIN_DAYS)?;
        Some(format!(
            "Objects expire {stay} days after moving to STANDARD_IA \
             (archive.lifecycle.infrequent_access_after_days = {ia}, expire_after_days = \
             {expire}), but STANDARD_IA bills at least {IA_MIN_DAYS} days per object, so \
             early-deletion charges apply. Expire at {} days or later, or skip STANDARD_IA with \
             infrequent_access_after_days = 0.",
            ia.saturating_add(IA_MIN_DAYS)
        ))
    }

    /// Objects leaving GLACIER_IR (to DEEP_ARCHIVE, or by expiry) within 90 days.
    fn early_exit_from_glacier_ir(&self) -> Option<String> {
        let glacier_ir = self.glacier_ir_after_days;
        if glacier_ir == 0 {
            return None;
        }
        let (what, field, days) = if self.deep_archive_after_days > 0 {
            (
                "move to DEEP_ARCHIVE",
                "deep_archive_after_days",
                self.deep_archive_after_days,
            )
        } else {
            ("expire", "expire_after_days", self.expiry()?)
        };
        let stay = days.checked_sub(glacier_ir)?;
        (stay < GLACIER_IR_MIN_DAYS).then(|| {
            format!(
                "Objects {what} {stay} days after moving to GLACIER_IR \
                 (archive.lifecycle.glacier_ir_after_days = {glacier_ir}, {field} = {days}), but \
                 GLACIER_IR bills at least {GLACIER_IR_MIN_DAYS} days per object, so \
                 early-deletion charges apply. Set {field} to {} or more.",
                glacier_ir.saturating_add(GLACIER_IR_MIN_DAYS)
            )
        })
    }

    /// Objects expiring within 180 days of their move to DEEP_ARCHIVE.
    fn early_exit_from_deep_archive(&self) -> Option<String> {
        let deep_archive = self.deep_archive_after_days;
        let (stay, expire) = self.early_expiry(deep_archive, DEEP_ARCHIVE_MIN_DAYS)?;
        Some(format!(
            "Objects expire {stay} days after moving to DEEP_ARCHIVE \
             (archive.lifecycle.deep_archive_after_days = {deep_archive}, expire_after_days = \
             {expire}), but DEEP_ARCHIVE bills at least {DEEP_ARCHIVE_MIN_DAYS} days per object, \
             so early-deletion charges apply. Set expire_after_days to {} or more.",
            deep_archive.saturating_add(DEEP_ARCHIVE_MIN_DAYS)
        ))
    }

    /// For objects moved to a storage class on day `entered` (`0`: never) that expire less than
    /// `min_days` later: how long they stay in it, and the expiry day.
    fn early_expiry(&self, entered: u32, min_days: u32) -> Option<(u32, u32)> {
        if entered == 0 {
            return None;
        }
        let expire = self.expiry()?;
        let stay = expire.checked_sub(entered)?;
        (stay < min_days).then_some((stay, expire))
    }
}

/// Each tier in use comes later than the one before.
fn check_tier_order(used: &[Tier]) -> Result<(), LifecycleError> {
    for pair in used.windows(2) {
        let (before, tier) = (pair[0], pair[1]);
        if tier.days <= before.days {
            return Err(LifecycleError::TiersOutOfOrder { tier, before });
        }
    }
    Ok(())
}

/// One rule of a bucket lifecycle configuration, as in the JSON of S3's
/// `PutBucketLifecycleConfiguration` (and `aws s3api put-bucket-lifecycle-configuration`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleRule {
    /// The rule's ID, see [`rule_id`].
    #[serde(rename = "ID")]
    pub id: String,
    /// `Enabled` or `Disabled`.
    pub status: String,
    /// Which objects the rule applies to.
    pub filter: RuleFilter,
    /// Storage class changes, in day order.
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// When objects are deleted, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Expiration>,
    /// When incomplete multipart uploads are aborted, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_upload: Option<AbortIncompleteMultipartUpload>,
}

impl LifecycleRule {
    /// Whether the rule does anything. S3 refuses a rule without any action, so a rule for
    /// settings that turn every step off must not be put (remove the rule instead).
    pub fn has_actions(&self) -> bool {
        !self.transitions.is_empty()
            || self.expiration.is_some()
            || self.abort_incomplete_multipart_upload.is_some()
    }
}

/// The objects a rule applies to: those whose key starts with `prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleFilter {
    /// The key prefix (`""`: the whole bucket).
    #[serde(default)]
    pub prefix: String,
}

/// A move to another storage class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Transition {
    /// Days after an object is written.
    pub days: u32,
    /// `STANDARD_IA`, `GLACIER_IR` or `DEEP_ARCHIVE`.
    pub storage_class: String,
}

/// Deletion of objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Expiration {
    /// Days after an object is written.
    pub days: u32,
}

/// Abort of multipart uploads never completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AbortIncompleteMultipartUpload {
    /// Days after the upload was started.
    pub days_after_initiation: u32,
}

/// The ID of sawmill's lifecycle rule for the archive under `prefix`: `sawmill-tiers` for an
/// empty prefix, else `sawmill-tiers:<prefix>` (prefix trimmed of `/`). IDs longer than S3's
/// 255 characters keep their start and end with `~` and a hash of the whole prefix, so
/// different long prefixes get different IDs.
pub fn rule_id(prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return RULE_ID_BASE.to_string();
    }
    let id = format!("{RULE_ID_BASE}:{prefix}");
    if id.len() <= MAX_RULE_ID_LEN {
        return id;
    }
    let suffix = format!("~{:016x}", fnv1a64(prefix.as_bytes()));
    let mut cut = MAX_RULE_ID_LEN - suffix.len();
    while !id.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &id[..cut])
}

/// The lifecycle rule for the archive under `prefix`: transitions for the tiers in use, in day
/// order, expiry and abort of incomplete uploads when set. Call
/// [`LifecycleSettings::validate`] first; see also [`LifecycleRule::has_actions`].
pub fn rule(settings: &LifecycleSettings, prefix: &str) -> LifecycleRule {
    let trimmed = prefix.trim_matches('/');
    let filter_prefix = if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}/")
    };
    let mut transitions: Vec<Transition> = settings
        .used_tiers()
        .into_iter()
        .map(|t| Transition {
            days: t.days,
            storage_class: t.storage_class.to_string(),
        })
        .collect();
    transitions.sort_by_key(|t| t.days);
    LifecycleRule {
        id: rule_id(trimmed),
        status: "Enabled".to_string(),
        filter: RuleFilter {
            prefix: filter_prefix,
        },
        transitions,
        expiration: (settings.expire_after_days > 0).then_some(Expiration {
            days: settings.expire_after_days,
        }),
        abort_incomplete_multipart_upload: (settings.abort_incomplete_multipart_after_days > 0)
            .then_some(AbortIncompleteMultipartUpload {
                days_after_initiation: settings.abort_incomplete_multipart_after_days,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The default settings with these days for STANDARD_IA, GLACIER_IR, DEEP_ARCHIVE and
    /// expiry.
    fn days(ia: u32, glacier_ir: u32, deep_archive: u32, expire: u32) -> LifecycleSettings {
        LifecycleSettings {
            infrequent_access_after_days: ia,
            glacier_ir_after_days: glacier_ir,
            deep_archive_after_days: deep_archive,
            expire_after_days: expire,
            ..LifecycleSettings::default()
        }
    }

    /// Every case is refused with an error naming its setting.
    fn rejected(cases: &[(LifecycleSettings, &str)]) {
        for (s, field) in cases {
            match s.validate() {
                Err(e) => assert!(
                    e.to_string()
                        .contains(&format!("archive.lifecycle.{field}")),
                    "{e} should name {field}"
                ),
                Ok(w) => panic!("{s:?} accepted with warnings {w:?}"),
            }
        }
    }

    #[test]
    fn defaults_give_the_documented_rule() {
        let s = LifecycleSettings::default();
        assert_eq!(s.validate(), Ok(Vec::new()));
        let r = rule(&s, "logs/v1");
        assert!(r.has_actions());
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "ID": "sawmill-tiers:logs/v1",
                "Status": "Enabled",
                "Filter": {"Prefix": "logs/v1/"},
                "Transitions": [
                    {"Days": 30, "StorageClass": "STANDARD_IA"},
                    {"Days": 90, "StorageClass": "GLACIER_IR"},
                    {"Days": 180, "StorageClass": "DEEP_ARCHIVE"}
                ],
                "Expiration": {"Days": 400},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}
            })
        );
        // And back.
        let back: LifecycleRule =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn prefix_slashes_are_trimmed() {
        let s = LifecycleSettings::default();
        assert_eq!(rule(&s, "/logs/v1/"), rule(&s, "logs/v1"));
        let r = rule(&s, "");
        assert_eq!(r.id, "sawmill-tiers");
        assert_eq!(r.filter.prefix, "");
        assert_eq!(rule(&s, "//").filter.prefix, "");
    }

    #[test]
    fn infrequent_access_before_30_days_is_rejected() {
        let field = "infrequent_access_after_days";
        rejected(&[
            (days(29, 90, 180, 400), field),
            (days(1, 90, 180, 400), field),
        ]);
        assert_eq!(
            days(29, 90, 180, 400).validate(),
            Err(LifecycleError::InfrequentAccessTooEarly { days: 29 })
        );
    }

    #[test]
    fn tiers_out_of_order_are_rejected() {
        rejected(&[
            (days(30, 30, 180, 400), "glacier_ir_after_days"),
            (days(30, 90, 90, 400), "deep_archive_after_days"),
            // Also across a tier that is not used.
            (days(30, 0, 20, 400), "deep_archive_after_days"),
            (days(0, 200, 100, 400), "deep_archive_after_days"),
        ]);
    }

    #[test]
    fn glacier_less_than_30_days_after_infrequent_access_is_rejected() {
        rejected(&[
            (days(30, 59, 180, 400), "glacier_ir_after_days"),
            (days(30, 0, 45, 400), "deep_archive_after_days"),
        ]);
        let e = days(30, 59, 180, 400).validate().unwrap_err().to_string();
        assert!(e.contains("set it to 60 or more"), "{e}");
        // Without STANDARD_IA, Glacier may come early.
        assert_eq!(days(0, 1, 91, 271).validate(), Ok(Vec::new()));
    }

    #[test]
    fn expiry_not_after_every_transition_is_rejected() {
        rejected(&[
            (days(30, 90, 180, 180), "expire_after_days"),
            (days(30, 90, 180, 10), "expire_after_days"),
            (days(30, 0, 0, 30), "expire_after_days"),
        ]);
    }

    #[test]
    fn everything_off_is_allowed() {
        let s = days(0, 0, 0, 0);
        assert_eq!(s.validate(), Ok(Vec::new()));
        let r = rule(&s, "logs/v1");
        assert!(r.transitions.is_empty());
        assert!(r.has_actions());
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "ID": "sawmill-tiers:logs/v1",
                "Status": "Enabled",
                "Filter": {"Prefix": "logs/v1/"},
                "Transitions": [],
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}
            })
        );

        let s = LifecycleSettings {
            abort_incomplete_multipart_after_days: 0,
            ..days(0, 0, 0, 0)
        };
        assert_eq!(s.validate(), Ok(Vec::new()));
        assert!(!rule(&s, "logs/v1").has_actions());
    }

    #[test]
    fn unmanaged_settings_are_not_checked() {
        let s = LifecycleSettings {
            manage: false,
            ..days(1, 90, 180, 400)
        };
        assert_eq!(s.validate(), Ok(Vec::new()));
    }

    #[test]
    fn disabled_tiers_are_left_out() {
        let s = LifecycleSettings {
            abort_incomplete_multipart_after_days: 0,
            ..days(30, 0, 180, 0)
        };
        assert_eq!(s.validate(), Ok(Vec::new()));
        assert_eq!(
            serde_json::to_value(rule(&s, "logs/v1")).unwrap(),
            json!({
                "ID": "sawmill-tiers:logs/v1",
                "Status": "Enabled",
                "Filter": {"Prefix": "logs/v1/"},
                "Transitions": [
                    {"Days": 30, "StorageClass": "STANDARD_IA"},
                    {"Days": 180, "StorageClass": "DEEP_ARCHIVE"}
                ]
            })
        );

        let r = rule(&days(0, 90, 0, 400), "x");
        assert_eq!(
            r.transitions,
            vec![Transition {
                days: 90,
                storage_class: "GLACIER_IR".to_string()
            }]
        );
        assert_eq!(r.expiration, Some(Expiration { days: 400 }));
    }

    /// The one warning of `s`.
    fn warning(s: LifecycleSettings) -> String {
        let w = s.validate().unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        w[0].clone()
    }

    #[test]
    fn early_expiry_warns() {
        // 20 days in DEEP_ARCHIVE.
        let w = warning(days(30, 90, 180, 200));
        assert!(w.contains("DEEP_ARCHIVE") && w.contains("expire_after_days"));
        assert!(w.contains("360"), "{w}");

        // 10 days in GLACIER_IR before expiry.
        let w = warning(days(30, 90, 0, 100));
        assert!(w.contains("GLACIER_IR") && w.contains("expire"), "{w}");

        // 10 days in STANDARD_IA before expiry.
        let w = warning(days(30, 0, 0, 40));
        assert!(w.contains("STANDARD_IA") && w.contains("60"), "{w}");
    }

    #[test]
    fn early_move_from_glacier_ir_to_deep_archive_warns() {
        let w = warning(days(30, 90, 120, 400));
        assert!(
            w.contains("GLACIER_IR") && w.contains("deep_archive_after_days"),
            "{w}"
        );
    }

    #[test]
    fn rule_ids() {
        assert_eq!(rule_id(""), "sawmill-tiers");
        assert_eq!(rule_id("/"), "sawmill-tiers");
        assert_eq!(rule_id("logs/v1"), "sawmill-tiers:logs/v1");
        assert_eq!(rule_id("/logs/v1/"), "sawmill-tiers:logs/v1");

        let a = "a".repeat(300);
        let b = format!("{}b", "a".repeat(299));
        let (ia, ib) = (rule_id(&a), rule_id(&b));
        assert!(ia.chars().count() <= 255 && ib.chars().count() <= 255);
        assert!(ia.starts_with("sawmill-tiers:aaaa"));
        assert_ne!(ia, ib);
        assert_eq!(ia, rule_id(&a), "stable");

        // Multi-byte characters are cut on a character boundary.
        let c = "é".repeat(300);
        let ic = rule_id(&c);
        assert!(ic.len() <= 255 && ic.starts_with("sawmill-tiers:é"));

        // A prefix that just fits is kept whole.
        let fits = "x".repeat(255 - "sawmill-tiers:".len());
        assert_eq!(rule_id(&fits), format!("sawmill-tiers:{fits}"));
    }

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn long_prefix_rule_ids_keep_their_values() {
        // the ID of the rule already in a bucket: a new one would leave the old rule behind
        assert_eq!(
            rule_id(&"a".repeat(300)),
            format!("sawmill-tiers:{}~ee7717eba7a17e21", "a".repeat(224))
        );
        assert_eq!(
            rule_id(&format!("{}b", "a".repeat(299))),
            format!("sawmill-tiers:{}~ee7714eba7a17908", "a".repeat(224))
        );
    }

    #[test]
    fn partial_tables_keep_defaults() {
        let s: LifecycleSettings = serde_json::from_value(json!({"expire_after_days": 0})).unwrap();
        assert_eq!(
            s,
            LifecycleSettings {
                expire_after_days: 0,
                ..LifecycleSettings::default()
            }
        );
        let s: LifecycleSettings = serde_json::from_value(json!({})).unwrap();
        assert_eq!(s, LifecycleSettings::default());
        let s: LifecycleSettings =
            serde_json::from_value(json!({"manage": false, "glacier_ir_after_days": 120})).unwrap();
        assert!(!s.manage);
        assert_eq!(s.glacier_ir_after_days, 120);
        assert_eq!(s.infrequent_access_after_days, 30);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = serde_json::from_value::<LifecycleSettings>(json!({"expire_days": 10}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("expire_days"), "{e}");
    }
}
