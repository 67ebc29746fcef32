//! Rotation status, decided here and nowhere else: given an item, the policy rule that
//! governs it and the time, say OK / Due soon / Overdue / Alert / Not applicable / Unknown,
//! why, and what the policy prescribes.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::inventory::{Fetched, KeyItem, KeyManager, KeyState, ReadFailure, SecretItem};
use super::policy::{ExternalItem, ItemRule, Policy, Selector};

/// A rotation status, most severe first (the inventory sorts by this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Past the policy's overdue threshold.
    Alert,
    /// Past its due date, not yet past the threshold.
    Overdue,
    /// Data needed to judge is missing (denied, not found, not in the policy).
    Unknown,
    /// Due within the policy's lead time.
    DueSoon,
    Ok,
    /// Rotation does not apply (asymmetric, HMAC, imported, custom key store, retired).
    NotApplicable,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Alert => "ALERT",
            Status::Overdue => "Overdue",
            Status::Unknown => "Unknown",
            Status::DueSoon => "Due soon",
            Status::Ok => "OK",
            Status::NotApplicable => "n/a",
        }
    }

    /// Does this status need someone's attention in the daily review?
    pub fn needs_attention(self) -> bool {
        matches!(self, Status::Alert | Status::Overdue | Status::Unknown | Status::DueSoon)
    }

    /// Does `--check` fail on it?
    pub fn fails_check(self) -> bool {
        matches!(self, Status::Alert | Status::Overdue)
    }
}

/// The verdict on one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub status: Status,
    /// Why, in a sentence an operator can act on.
    pub reason: String,
    /// What the policy prescribes.
    pub action: String,
    /// When the next rotation is (or was) due under the policy.
    pub due: Option<DateTime<Utc>>,
    /// The newest rotation (or creation when it was never rotated).
    pub last_rotated: Option<DateTime<Utc>>,
}

impl Judgement {
    fn na(reason: impl Into<String>) -> Self {
        Self {
            status: Status::NotApplicable,
            reason: reason.into(),
            action: String::new(),
            due: None,
            last_rotated: None,
        }
    }
    fn unknown(reason: impl Into<String>, action: impl Into<String>) -> Self {
        Self { status: Status::Unknown, reason: reason.into(), action: action.into(), due: None, last_rotated: None }
    }
}

/// Can this key's material be rotated by KMS at all?
pub fn rotation_applies(k: &KeyItem) -> bool {
    k.spec == "SYMMETRIC_DEFAULT" && k.origin == "AWS_KMS" && k.custom_key_store.is_none()
}

/// Is this a symmetric key with imported material (Origin EXTERNAL, not in a custom key
/// store)? KMS cannot rotate it automatically, but it can rotate it on demand once new
/// material is imported (RotateKeyOnDemand; ListKeyRotations lists its materials).
pub fn on_demand_rotation_only(k: &KeyItem) -> bool {
    k.origin == "EXTERNAL" && k.spec == "SYMMETRIC_DEFAULT" && k.custom_key_store.is_none()
}

/// How long before imported key material expires keydeck raises an ALERT: 004 §4.6 alerts
/// "14 days before expiry" (its expiry rule, for the TLS certificate). Inside the rule's
/// `due_soon` lead time it is Due soon.
pub const EXPIRY_ALERT_DAYS: i64 = 14;

/// The action for a symmetric key with imported material that is due a rotation.
pub const ON_DEMAND_IMPORTED_ROTATION: &str = "rotate on demand: import new key material (kms:ImportKeyMaterial, ImportType NEW_KEY_MATERIAL), then kms:RotateKeyOnDemand (004 §6: key-admin proposes, CISO approves)";

/// Why KMS cannot rotate this key's material by itself, when it cannot: the policy's
/// period still binds, and the rotation is manual (a new key, the alias moved to it).
pub fn manual_rotation_reason(k: &KeyItem) -> Option<String> {
    if k.custom_key_store.is_some() || matches!(k.origin.as_str(), "AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE") {
        return Some("custom key store: KMS cannot rotate it automatically".into());
    }
    if on_demand_rotation_only(k) {
        return Some(
            "imported key material: KMS cannot rotate it automatically, only on demand with new imported material"
                .into(),
        );
    }
    if k.origin == "EXTERNAL" {
        return Some(format!("imported key material ({}): KMS cannot rotate it automatically", k.spec));
    }
    if k.spec != "SYMMETRIC_DEFAULT" && !k.spec.is_empty() {
        let what = if k.spec.starts_with("HMAC") { "HMAC" } else { "asymmetric" };
        return Some(format!("{what} key ({}): KMS cannot rotate it automatically", k.spec));
    }
    None
}

/// The action for a key KMS cannot rotate by itself.
pub const MANUAL_ROTATION: &str = "rotate manually: create a new key and move the alias";

/// Which rule governs an item, when a read the answer depends on may have failed.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleMatch<'a> {
    /// A rule selects it.
    Rule(&'a ItemRule),
    /// No rule selects it; the policy's default rule judges it (still unmanaged drift).
    Default(&'a ItemRule),
    /// No rule selects it, and every read the rules depend on succeeded.
    NoRule,
    /// A rule might select it, but a read that rule depends on failed: not a verdict.
    Undetermined(Undetermined),
}

/// Why the rule of an item cannot be determined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undetermined {
    /// What could not be read ("tags", "aliases").
    pub what: &'static str,
    /// The call that failed, `service:Action`.
    pub call: String,
    pub failure: ReadFailure,
}

impl Undetermined {
    pub fn judgement(&self) -> Judgement {
        let what = match &self.failure {
            ReadFailure::Failed(_) => "unreadable",
            ReadFailure::Denied => "denied",
            ReadFailure::Throttled => "throttled",
        };
        Judgement::unknown(format!("rule cannot be determined ({} {what})", self.what), self.failure.advice(&self.call))
    }
}

impl<'a> RuleMatch<'a> {
    /// The rule that governs it (not the default).
    pub fn rule(&self) -> Option<&'a ItemRule> {
        match self {
            RuleMatch::Rule(r) => Some(r),
            _ => None,
        }
    }

    /// The rule it is judged by: its own, else the policy's default.
    pub fn judged_by(&self) -> Option<&'a ItemRule> {
        match self {
            RuleMatch::Rule(r) | RuleMatch::Default(r) => Some(r),
            _ => None,
        }
    }
}

impl Policy {
    /// The rule for a key, saying when it cannot be known: a tag rule cannot be ruled
    /// out when the key's tags were not read, nor a name rule when the region's aliases
    /// (`aliases_failed`: kms:ListAliases failed there) were not.
    pub fn key_rule(&self, k: &KeyItem, aliases_failed: Option<&ReadFailure>) -> RuleMatch<'_> {
        if let Some(r) = self.rule_for_key(k) {
            return RuleMatch::Rule(r);
        }
        if let Some(f) = aliases_failed {
            if self.keys.iter().any(|r| matches!(r.selector, Selector::Name(_))) {
                return RuleMatch::Undetermined(Undetermined {
                    what: "aliases",
                    call: "kms:ListAliases".into(),
                    failure: f.clone(),
                });
            }
        }
        if self.keys.iter().any(|r| matches!(r.selector, Selector::Tag(..))) {
            let failure = match &k.tags {
                Fetched::Ok(_) | Fetched::NotApplicable => None,
                Fetched::NotFetched => Some(ReadFailure::Failed("tags not read yet".into())),
                other => other.failure(),
            };
            if let Some(failure) = failure {
                return RuleMatch::Undetermined(Undetermined {
                    what: "tags",
                    call: "kms:ListResourceTags".into(),
                    failure,
                });
            }
        }
        default_of(&self.keys)
    }

    /// The rule for a secret, else the policy's default for secrets.
    pub fn secret_rule(&self, s: &SecretItem) -> RuleMatch<'_> {
        match self.rule_for_secret(s) {
            Some(r) => RuleMatch::Rule(r),
            None => default_of(&self.secrets),
        }
    }

    /// The rule for a key: by ARN, else by any alias, else by tag.
    pub fn rule_for_key(&self, k: &KeyItem) -> Option<&ItemRule> {
        let tags = k.tags.ok();
        find_rule(
            &self.keys,
            &k.arn,
            |n| k.aliases.iter().any(|a| a == n),
            |key, v| tags.is_some_and(|t| t.get(key).is_some_and(|x| x == v)),
        )
    }

    /// The rule for a secret: by ARN, else by name, else by tag.
    pub fn rule_for_secret(&self, s: &SecretItem) -> Option<&ItemRule> {
        find_rule(&self.secrets, &s.arn, |n| n == s.name, |key, v| s.tags.get(key).is_some_and(|x| x == v))
    }
}

fn default_of(rules: &[ItemRule]) -> RuleMatch<'_> {
    rules.iter().find(|r| r.selector == Selector::Default).map(RuleMatch::Default).unwrap_or(RuleMatch::NoRule)
}

fn find_rule<'a>(
    rules: &'a [ItemRule],
    arn: &str,
    name_matches: impl Fn(&str) -> bool,
    tag_matches: impl Fn(&str, &str) -> bool,
) -> Option<&'a ItemRule> {
    rules
        .iter()
        .find(|r| matches!(&r.selector, Selector::Arn(a) if a == arn))
        .or_else(|| rules.iter().find(|r| matches!(&r.selector, Selector::Name(n) if name_matches(n))))
        .or_else(|| rules.iter().find(|r| matches!(&r.selector, Selector::Tag(k, v) if tag_matches(k, v))))
}

/// Judge a KMS key.
pub fn judge_key(k: &KeyItem, rule: Option<&ItemRule>, now: DateTime<Utc>) -> Judgement {
    if k.state == KeyState::Unknown {
        let why = k.problem.clone().unwrap_or_else(|| "metadata unavailable".into());
        return Judgement::unknown(why, "grant kms:DescribeKey to the reviewing role");
    }
    if k.state == KeyState::PendingDeletion {
        let when = k.deletion_date.map(|d| format!(" on {}", d.format("%Y-%m-%d"))).unwrap_or_default();
        return Judgement::na(format!("pending deletion: key material is destroyed{when}"));
    }
    if k.state == KeyState::PendingReplicaDeletion {
        return Judgement::na("replica pending deletion");
    }
    if k.manager == KeyManager::Aws {
        return Judgement::na("AWS-managed key: AWS rotates it every year");
    }
    let Some(rule) = rule else {
        return Judgement::unknown(
            "not in the policy (unmanaged)",
            "add a [[keys]] rule for it, or schedule its deletion",
        );
    };
    if k.state == KeyState::PendingImport {
        return judge_pending_import(k, now);
    }
    let j = judge_rotation(k, rule, now);
    match material_expiry(k, rule.due_soon.0, now) {
        Some(e) => with_expiry(j, e),
        None => j,
    }
}

/// A compromised key an incident replaced (runbook kms-key-compromise) whose aliases moved
/// to the replacement `by` ("replaced by <by> in incident <incident>"). Enabled, it is ALERT:
/// the compromised key is usable (the incident's quarantine enables it only to re-encrypt,
/// and end-quarantine disables it again). Disabled, n/a until its deletion is scheduled
/// (004 §6: key-admin proposes, CISO approves). Unreadable metadata and a scheduled deletion
/// read as for any key.
pub fn judge_replaced(k: &KeyItem, by: &str, incident: Option<&str>, now: DateTime<Utc>) -> Judgement {
    let what = match incident {
        Some(i) => format!("replaced by {by} in incident {i}"),
        None => format!("replaced by {by}"),
    };
    let mut j = match k.state {
        KeyState::Unknown | KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => judge_key(k, None, now),
        KeyState::Enabled => Judgement {
            status: Status::Alert,
            reason: "Enabled: the compromised key is usable".into(),
            action: format!(
                "disable it (kms:DisableKey) once nothing is left to re-encrypt{}",
                incident.map(|i| format!(": keydeck incident status {i}")).unwrap_or_default()
            ),
            due: None,
            last_rotated: None,
        },
        KeyState::Disabled => {
            let mut j = Judgement::na("disabled");
            j.action = "schedule its deletion once nothing encrypted under it is needed (004 §6: dual approval, keydeck approvals propose schedule-deletion)".into();
            j
        }
        _ => Judgement::na(k.state.label()),
    };
    j.reason = format!("{what}: {}", j.reason);
    j
}

/// A key without usable key material (PendingImport): it lost imported material (expired
/// or deleted: ALERT, nothing encrypted under it decrypts until the same material is
/// reimported), or it never had any (n/a: nothing to rotate yet).
fn judge_pending_import(k: &KeyItem, now: DateTime<Utc>) -> Judgement {
    let imported = k.imported.clone().unwrap_or_default();
    let reimport = "reimport the same key material (kms:GetParametersForImport, kms:ImportKeyMaterial): until then nothing encrypted under the key can be decrypted";
    match imported.expiry() {
        Some(expired) if expired <= now => Judgement {
            status: Status::Alert,
            reason: format!(
                "imported key material expired {} ({} d ago): the key is unusable (PendingImport)",
                expired.format("%Y-%m-%d"),
                (now - expired).num_days()
            ),
            action: reimport.into(),
            due: Some(expired),
            last_rotated: None,
        },
        _ if imported.ever_imported() => Judgement {
            status: Status::Alert,
            reason: "imported key material deleted: the key is unusable (PendingImport)".into(),
            action: reimport.into(),
            due: None,
            last_rotated: None,
        },
        _ => Judgement::na(
            "awaiting imported key material (PendingImport): unusable, nothing to rotate until kms:ImportKeyMaterial",
        ),
    }
}

/// When imported key material expires: a status (ALERT within [`EXPIRY_ALERT_DAYS`], Due
/// soon within the rule's lead time, else OK), a note and an action.
struct Expiry {
    status: Status,
    note: String,
    action: String,
    at: DateTime<Utc>,
}

fn material_expiry(k: &KeyItem, due_soon_days: i64, now: DateTime<Utc>) -> Option<Expiry> {
    let imported = k.imported.as_ref()?;
    if imported.expiration_model.as_deref() == Some("KEY_MATERIAL_DOES_NOT_EXPIRE") {
        return None;
    }
    let at = imported.expiry()?;
    // Whole days left, counting a part day as one: material expiring in 4 d 23 h is "in 5 d".
    let left = ((at - now).num_seconds().max(0) + 86_399) / 86_400;
    let when = at.format("%Y-%m-%d");
    let reimport = format!(
        "reimport the key material before {when} with a later ValidTo, or with KEY_MATERIAL_DOES_NOT_EXPIRE (kms:ImportKeyMaterial): when it expires the key becomes unusable"
    );
    let (status, note, action) = if at <= now {
        (Status::Alert, format!("imported key material expired {when} ({} d ago)", (now - at).num_days()), reimport)
    } else if left < EXPIRY_ALERT_DAYS {
        (
            Status::Alert,
            format!(
                "imported key material expires {when} (in {left} d; policy alerts {EXPIRY_ALERT_DAYS} d before expiry)"
            ),
            reimport,
        )
    } else if left < EXPIRY_ALERT_DAYS + due_soon_days {
        (
            Status::DueSoon,
            format!("imported key material expires {when} (in {left} d)"),
            format!("plan the reimport before {}", (at - Duration::days(EXPIRY_ALERT_DAYS)).format("%Y-%m-%d")),
        )
    } else {
        (Status::Ok, format!("imported key material expires {when}"), String::new())
    };
    Some(Expiry { status, note, action, at })
}

/// The rotation verdict and the material's expiry together: the more severe decides the
/// status and the action comes first; both are in the reason; Due is the earlier date.
fn with_expiry(mut j: Judgement, e: Expiry) -> Judgement {
    let expiry_first = e.status < j.status;
    if expiry_first {
        j.status = e.status;
        j.reason = format!("{}; {}", e.note, j.reason);
        j.action = if j.action.is_empty() { e.action } else { format!("{}; {}", e.action, j.action) };
    } else {
        j.reason = format!("{}; {}", j.reason, e.note);
        if !e.action.is_empty() && e.status.needs_attention() {
            j.action = if j.action.is_empty() { e.action } else { format!("{}; {}", j.action, e.action) };
        }
    }
    if e.status.needs_attention() || j.due.is_none() {
        j.due = Some(j.due.map_or(e.at, |d| d.min(e.at)));
    }
    j
}

/// A key's rotation judged against its rule's period (the key exists, usable or disabled).
fn judge_rotation(k: &KeyItem, rule: &ItemRule, now: DateTime<Utc>) -> Judgement {
    let Some(period) = rule.rotation else {
        return Judgement::na("policy: not rotated on a schedule");
    };
    if k.state == KeyState::Disabled {
        return Judgement::na("disabled: not usable, so not rotated");
    }
    if let Some(why) = manual_rotation_reason(k) {
        // The policy's period binds even where KMS cannot rotate: judged from the newest
        // rotation KMS lists (on-demand rotation of imported material), else creation.
        let on_demand = on_demand_rotation_only(k);
        if on_demand {
            if let Some(f) = k.rotation.failure() {
                return Judgement::unknown(
                    format!("rotation history {} (kms:ListKeyRotations)", f.label()),
                    f.advice("kms:ListKeyRotations"),
                );
            }
        }
        let last = Since::of(k.rotation.ok().and_then(|r| r.last()).map(|r| r.at), k.created);
        let Some(last) = last else {
            return Judgement::unknown("no creation or rotation date", "check DescribeKey permissions");
        };
        let fix = if on_demand { ON_DEMAND_IMPORTED_ROTATION } else { MANUAL_ROTATION };
        return judge_dates(last, period.0, rule.overdue_alert.0, rule.due_soon.0, now, vec![why], fix);
    }
    let rotation = match &k.rotation {
        Fetched::Ok(r) => r,
        Fetched::Denied => {
            return Judgement::unknown(
                "rotation status denied",
                "grant kms:GetKeyRotationStatus and kms:ListKeyRotations to the reviewing role",
            )
        }
        Fetched::Failed(e) => {
            return Judgement::unknown(format!("rotation status unavailable: {e}"), "retry the refresh")
        }
        Fetched::Throttled => {
            return Judgement::unknown(
                "rotation status throttled",
                ReadFailure::Throttled.advice("kms:GetKeyRotationStatus"),
            )
        }
        Fetched::NotFetched => return Judgement::unknown("rotation status not read yet", "refresh"),
        Fetched::NotApplicable => return Judgement::na("rotation does not apply"),
    };
    let last = Since::of(rotation.last().map(|r| r.at), k.created);
    let Some(last) = last else {
        return Judgement::unknown("no creation or rotation date", "check DescribeKey permissions");
    };
    let mut notes = Vec::new();
    if !rotation.enabled {
        notes.push("automatic rotation off".to_owned());
    } else if let Some(p) = rotation.period_days {
        if p > period.0 {
            notes.push(format!("KMS rotates every {p} d but the policy requires {} d", period.0));
        }
    }
    let fix = if rotation.enabled {
        "rotate on demand (kms:RotateKeyOnDemand; 004 §6: key-admin proposes, CISO approves)"
    } else {
        "enable automatic rotation (kms:EnableKeyRotation) and rotate on demand (key-admin proposes, CISO approves)"
    };
    judge_dates(last, period.0, rule.overdue_alert.0, rule.due_soon.0, now, notes, fix)
}

/// Judge a Secrets Manager secret. Its last change is the newest of its last rotation and
/// the creation of its AWSCURRENT version (a value replaced by hand), else its creation.
pub fn judge_secret(s: &SecretItem, rule: Option<&ItemRule>, now: DateTime<Utc>) -> Judgement {
    if let Some(d) = s.deleted {
        return Judgement::na(format!("scheduled for deletion ({})", d.format("%Y-%m-%d")));
    }
    let Some(rule) = rule else {
        return Judgement::unknown("not in the policy (unmanaged)", "add a [[secrets]] rule for it, or delete it");
    };
    let Some(period) = rule.rotation else {
        return Judgement::na("policy: rotated on compromise only");
    };
    let rotated = Since::of(s.last_rotated, s.created);
    let current = s.current_version_created.ok().copied();
    let mut notes = Vec::new();
    let last = match (rotated, current) {
        (Some(r), Some(c)) if c > r.at() => {
            notes.push(format!("value replaced outside rotation on {} (AWSCURRENT version)", c.format("%Y-%m-%d")));
            Some(Since::Changed(c))
        }
        (r, c) => r.or(c.map(Since::Changed)),
    };
    let Some(last) = last else {
        return Judgement::unknown("no creation or rotation date", "check secretsmanager:DescribeSecret permissions");
    };
    if let Some(f) = s.current_version_created.failure() {
        notes.push(format!("its AWSCURRENT version's date could not be read ({})", f.label()));
    }
    let sm_period = s.rotation_days.or_else(|| s.rotation_schedule.as_deref().and_then(schedule_period_days));
    if !s.rotation_enabled {
        notes.push("rotation off in Secrets Manager".to_owned());
    } else if let Some(d) = sm_period {
        if d > period.0 {
            notes.push(format!("Secrets Manager rotates every {d} d but the policy requires {} d", period.0));
        }
    } else if let Some(expr) = &s.rotation_schedule {
        notes.push(format!("rotation schedule {expr:?} not understood: compare it with the policy by hand"));
    }
    // Rotation on, and its next date passed a day ago: the rotation is failing.
    let failing = s.rotation_enabled && s.next_rotation.is_some_and(|n| now > n + Duration::days(1));
    if let (true, Some(n)) = (failing, s.next_rotation) {
        notes.push(format!(
            "rotation failing: Secrets Manager's next rotation was due {} ({} d ago)",
            n.format("%Y-%m-%d"),
            (now - n).num_days()
        ));
    }
    let fix = if s.rotation_enabled {
        "rotate now (secretsmanager:RotateSecret), then roll the consumers"
    } else {
        "rotate now and turn on a rotation schedule (secretsmanager:RotateSecret)"
    };
    let mut j = judge_dates(last, period.0, rule.overdue_alert.0, rule.due_soon.0, now, notes, fix);
    // A failed read is never a verdict (issue 12 #4): the AWSCURRENT version may be newer
    // than the rotation this judged by. An OK from the rotation stands (a newer version
    // only makes it newer); a finding does not.
    if let (Some(f), false) = (s.current_version_created.failure(), failing) {
        if j.status != Status::Ok {
            return Judgement {
                status: Status::Unknown,
                reason: format!(
                    "last change cannot be determined: its AWSCURRENT version's date could not be read ({}); by its last rotation alone: {} ({})",
                    f.label(),
                    j.status.label(),
                    j.reason
                ),
                action: f.advice("secretsmanager:ListSecretVersionIds"),
                due: j.due,
                last_rotated: j.last_rotated,
            };
        }
    }
    if failing {
        if j.status > Status::Overdue {
            j.status = Status::Overdue;
        }
        j.action = format!(
            "the rotation is failing: read the rotation function's logs, fix it, then rotate (secretsmanager:RotateSecret){}",
            if j.action.is_empty() { String::new() } else { format!("; {}", j.action) }
        );
    }
    j
}

/// The longest interval between two runs of a Secrets Manager rotation schedule, in days
/// (an upper bound): `rate(N days)`, `rate(N hours)`, or a six-field `cron(...)`.
/// `None` when the expression is not understood.
pub fn schedule_period_days(expr: &str) -> Option<i64> {
    let expr = expr.trim();
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|e| e.strip_suffix(')')) {
        let (n, unit) = inner.trim().split_once(' ')?;
        let n: i64 = n.trim().parse().ok().filter(|n| *n > 0)?;
        return match unit.trim() {
            "day" | "days" => Some(n),
            "hour" | "hours" => Some((n + 23) / 24),
            _ => None,
        };
    }
    let inner = expr.strip_prefix("cron(").and_then(|e| e.strip_suffix(')'))?;
    let f: Vec<&str> = inner.split_whitespace().collect();
    let [_min, _hour, dom, month, dow, _year] = f.as_slice() else { return None };
    // Months between runs: every month, every N months, a list (largest gap), or one month.
    let months = match *month {
        "*" => 1,
        m if m.contains('/') => m.split_once('/')?.1.parse::<i64>().ok().filter(|n| *n > 0)?,
        m => {
            let mut ms: Vec<i64> = m.split(',').map(month_number).collect::<Option<_>>()?;
            ms.sort_unstable();
            largest_gap(&ms, 12)
        }
    };
    let within_month = match (*dom, *dow) {
        ("*", "?") | ("?", "*") | ("*", "*") => 1,
        ("?", w) if w.contains('#') || w.contains('L') => 35,
        ("?", w) => {
            if w.contains('/') || w.contains('-') {
                7
            } else {
                let mut ds: Vec<i64> = w.split(',').map(weekday_number).collect::<Option<_>>()?;
                ds.sort_unstable();
                largest_gap(&ds, 7)
            }
        }
        (d, "?") if d.contains('/') => d.split_once('/')?.1.parse::<i64>().ok().filter(|n| *n > 0)?,
        (d, "?") if d.contains('L') || d.contains('W') || d.contains('-') => 31,
        (d, "?") => {
            let mut ds: Vec<i64> = d.split(',').map(|x| x.parse().ok()).collect::<Option<_>>()?;
            ds.sort_unstable();
            largest_gap(&ds, 31)
        }
        _ => return None,
    };
    // Once a month or rarer: the month gap dominates; more often: the gap inside a month.
    // (A weekday of the month can drift a few days further than 31.)
    Some(if months > 1 || within_month >= 28 { months * 31 + (within_month - 31).max(0) } else { within_month })
}

/// The largest gap between sorted values of a cycle of `len` (one value: the whole cycle).
fn largest_gap(v: &[i64], len: i64) -> i64 {
    let (Some(first), Some(last)) = (v.first(), v.last()) else { return len };
    let wrap = len - last + first;
    v.windows(2).map(|w| w[1] - w[0]).fold(wrap, i64::max).max(1)
}

fn month_number(m: &str) -> Option<i64> {
    const NAMES: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    m.parse().ok().or_else(|| NAMES.iter().position(|n| n.eq_ignore_ascii_case(m)).map(|i| i as i64 + 1))
}

fn weekday_number(d: &str) -> Option<i64> {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    d.parse().ok().or_else(|| NAMES.iter().position(|n| n.eq_ignore_ascii_case(d)).map(|i| i as i64 + 1))
}

/// What an item's rotation clock counts from (the policy counts an item never rotated
/// from its creation).
#[derive(Debug, Clone, Copy)]
enum Since {
    /// The newest rotation.
    Rotated(DateTime<Utc>),
    /// Never rotated: its creation.
    Created(DateTime<Utc>),
    /// A secret's value replaced outside rotation (its AWSCURRENT version's creation).
    Changed(DateTime<Utc>),
}

impl Since {
    fn of(rotated: Option<DateTime<Utc>>, created: Option<DateTime<Utc>>) -> Option<Self> {
        rotated.map(Since::Rotated).or(created.map(Since::Created))
    }

    fn at(self) -> DateTime<Utc> {
        match self {
            Since::Rotated(t) | Since::Created(t) | Since::Changed(t) => t,
        }
    }

    /// "last rotated 2026-01-05 (328 d ago)", "never rotated (created 2025-10-05, 420 d ago)".
    fn describe(self, now: DateTime<Utc>) -> String {
        let (t, age) = (self.at().format("%Y-%m-%d"), (now - self.at()).num_days());
        match self {
            Since::Rotated(_) => format!("last rotated {t} ({age} d ago)"),
            Since::Created(_) => format!("never rotated (created {t}, {age} d ago)"),
            Since::Changed(_) => format!("last changed {t} ({age} d ago)"),
        }
    }
}

fn judge_dates(
    since: Since,
    period_days: i64,
    alert_days: i64,
    due_soon_days: i64,
    now: DateTime<Utc>,
    notes: Vec<String>,
    fix: &str,
) -> Judgement {
    let last = since.at();
    let due = last + Duration::days(period_days);
    let late = (now - due).num_days();
    let mut reason = format!("{}; policy: every {period_days} d", since.describe(now));
    let (status, action) = if now > due + Duration::days(alert_days) {
        reason.push_str(&format!(", {late} d overdue (alert after {alert_days} d)"));
        (Status::Alert, format!("{fix}; past the {alert_days}-day threshold: report it"))
    } else if now > due {
        reason.push_str(&format!(", {late} d overdue (alert after {alert_days} d)"));
        (Status::Overdue, format!("{fix} within {} d", (alert_days - late).max(0)))
    } else if now > due - Duration::days(due_soon_days) {
        reason.push_str(&format!(", due {} (in {} d)", due.format("%Y-%m-%d"), (due - now).num_days()));
        (Status::DueSoon, format!("plan the rotation before {}", due.format("%Y-%m-%d")))
    } else {
        reason.push_str(&format!(", next due {}", due.format("%Y-%m-%d")));
        (Status::Ok, String::new())
    };
    for n in notes {
        reason.push_str("; ");
        reason.push_str(&n);
    }
    Judgement { status, reason, action, due: Some(due), last_rotated: Some(last) }
}

/// Judge an external item (certificate, third-party signing key) from its recorded dates.
pub fn judge_external(x: &ExternalItem, due_soon_days: i64, today: NaiveDate) -> Judgement {
    let (due, what) = match (x.expires, x.last_rotated, x.rotation) {
        (Some(exp), _, _) => (exp, "expires"),
        (None, Some(last), Some(p)) => (last + chrono::Days::new(p.0.max(0) as u64), "rotation due"),
        _ => return Judgement::unknown("no date recorded", "record `expires`, or `last_rotated` with `rotation`"),
    };
    let left = (due - today).num_days();
    let lead = x.alert_before.0;
    let due_at = due.and_hms_opt(0, 0, 0).map(|d| d.and_utc());
    let (status, reason, action) = if left < 0 {
        (Status::Alert, format!("{what} {due}: {} d ago", -left), "renew or rotate now".to_owned())
    } else if left <= lead {
        (
            Status::Alert,
            format!("{what} {due}, in {left} d (policy alerts {lead} d before)"),
            "renew or rotate now".to_owned(),
        )
    } else if left <= lead + due_soon_days {
        (
            Status::DueSoon,
            format!("{what} {due}, in {left} d (alert at {lead} d before)"),
            format!("plan renewal before {}", due - chrono::Days::new(lead as u64)),
        )
    } else {
        (Status::Ok, format!("{what} {due}, in {left} d"), String::new())
    };
    Judgement {
        status,
        reason,
        action,
        due: due_at,
        last_rotated: x.last_rotated.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::fixtures::{key, secret};
    use crate::domain::inventory::{ImportedMaterial, KeyMaterial, KeyRotation, RotationEvent, RotationKind};
    use crate::domain::policy::{Classification, Days};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("date")
    }

    fn rule(rotation: Option<i64>, alert: i64) -> ItemRule {
        ItemRule {
            selector: Selector::Name("k".into()),
            owner: "o".into(),
            classification: Classification::L4,
            rotation: rotation.map(Days),
            overdue_alert: Days(alert),
            due_soon: Days(30),
            regions: vec![],
            allowed_principals: vec![],
            purpose: String::new(),
        }
    }

    fn key_created(days_ago: i64, enabled: bool, rotations: &[i64]) -> KeyItem {
        let mut k = key("eu-north-1", "k", KeyState::Enabled);
        k.created = Some(now() - Duration::days(days_ago));
        k.rotation = Fetched::Ok(KeyRotation {
            enabled,
            history: rotations
                .iter()
                .map(|d| RotationEvent { at: now() - Duration::days(*d), kind: RotationKind::OnDemand })
                .collect(),
            ..Default::default()
        });
        k
    }

    #[test]
    fn thresholds_for_an_annual_key_with_a_7_day_alert() {
        let r = rule(Some(365), 7);
        let cases = [
            (100, Status::Ok),
            (340, Status::DueSoon),
            (368, Status::Overdue),
            (373, Status::Alert),
            (420, Status::Alert),
        ];
        for (age, want) in cases {
            let j = judge_key(&key_created(age, true, &[]), Some(&r), now());
            assert_eq!(j.status, want, "age {age}: {}", j.reason);
        }
        // Exactly at the boundary: due today is not yet overdue; 7 days late is not yet an alert.
        assert_eq!(judge_key(&key_created(365, true, &[]), Some(&r), now()).status, Status::DueSoon);
        assert_eq!(judge_key(&key_created(372, true, &[]), Some(&r), now()).status, Status::Overdue);
    }

    #[test]
    fn the_newest_rotation_counts_not_the_creation() {
        let r = rule(Some(365), 7);
        let j = judge_key(&key_created(800, false, &[368, 500]), Some(&r), now());
        assert_eq!(j.status, Status::Overdue, "{}", j.reason);
        assert!(j.reason.contains("3 d overdue") && j.reason.contains("automatic rotation off"), "{}", j.reason);
        assert!(j.action.contains("enable automatic rotation"), "{}", j.action);
        assert!(j.reason.starts_with("last rotated "), "{}", j.reason);
    }

    /// The policy counts an item never rotated from its creation, and the reason says so
    /// rather than calling the creation a rotation; a value replaced by hand is a change.
    #[test]
    fn a_key_or_secret_never_rotated_says_so_with_its_creation() {
        let r = rule(Some(365), 7);
        let j = judge_key(&key_created(420, false, &[]), Some(&r), now());
        let created = (now() - Duration::days(420)).format("%Y-%m-%d");
        assert!(j.reason.starts_with(&format!("never rotated (created {created}, 420 d ago); policy: every 365 d")));
        let mut s = secret("eu-north-1", "S", Some(90));
        s.last_rotated = None;
        s.created = Some(now() - Duration::days(30));
        assert!(judge_secret(&s, Some(&r), now()).reason.starts_with("never rotated (created "));
        s.current_version_created = Fetched::Ok(now() - Duration::days(10));
        assert!(judge_secret(&s, Some(&r), now()).reason.starts_with("last changed "));
    }

    #[test]
    fn jwt_secret_alerts_after_three_days() {
        let r = rule(Some(90), 3);
        let mut s = secret("eu-north-1", "JWT_SECRET", Some(90));
        s.last_rotated = Some(now() - Duration::days(95));
        assert_eq!(judge_secret(&s, Some(&r), now()).status, Status::Alert);
        s.last_rotated = Some(now() - Duration::days(92));
        assert_eq!(judge_secret(&s, Some(&r), now()).status, Status::Overdue);
        s.rotation_enabled = false;
        s.last_rotated = Some(now() - Duration::days(10));
        let j = judge_secret(&s, Some(&r), now());
        assert_eq!(j.status, Status::Ok);
        assert!(j.reason.contains("rotation off"), "{}", j.reason);
    }

    #[test]
    fn a_rotation_period_binds_where_kms_cannot_rotate() {
        let r = rule(Some(365), 7);
        let mut rsa = key_created(900, false, &[]);
        rsa.spec = "RSA_2048".into();
        rsa.usage = "SIGN_VERIFY".into();
        rsa.rotation = Fetched::NotApplicable;
        let mut hmac = key_created(900, false, &[]);
        hmac.spec = "HMAC_256".into();
        hmac.rotation = Fetched::NotApplicable;
        let mut imported = key_created(900, false, &[]);
        imported.origin = "EXTERNAL".into();
        imported.spec = "RSA_2048".into();
        imported.rotation = Fetched::NotApplicable;
        let mut store = key_created(900, false, &[]);
        store.custom_key_store = Some("cks-1".into());
        store.origin = "AWS_CLOUDHSM".into();
        store.rotation = Fetched::NotApplicable;
        let mut xks = key_created(900, false, &[]);
        xks.origin = "EXTERNAL_KEY_STORE".into();
        xks.rotation = Fetched::NotApplicable;
        for k in [rsa, hmac, imported, store, xks] {
            let j = judge_key(&k, Some(&r), now());
            assert_eq!(j.status, Status::Alert, "{}", j.reason);
            assert!(j.reason.contains("KMS cannot rotate it automatically"), "{}", j.reason);
            assert!(j.action.starts_with(MANUAL_ROTATION), "{}", j.action);
            assert!(j.status.fails_check());
            // 368 days: Overdue; 100 days: OK.
            let mut young = k.clone();
            young.created = Some(now() - Duration::days(368));
            assert_eq!(judge_key(&young, Some(&r), now()).status, Status::Overdue);
            young.created = Some(now() - Duration::days(100));
            assert_eq!(judge_key(&young, Some(&r), now()).status, Status::Ok);
            // n/a only where the rule sets no period, or the key is disabled or being deleted.
            assert_eq!(judge_key(&k, Some(&rule(None, 7)), now()).status, Status::NotApplicable);
            let mut off = k.clone();
            off.state = KeyState::Disabled;
            assert_eq!(judge_key(&off, Some(&r), now()).status, Status::NotApplicable);
            let mut going = k.clone();
            going.state = KeyState::PendingDeletion;
            assert_eq!(judge_key(&going, Some(&r), now()).status, Status::NotApplicable);
        }
    }

    fn imported(created_days_ago: i64, rotated_days_ago: &[i64], valid_to_in_days: Option<i64>) -> KeyItem {
        let mut k = key_created(created_days_ago, false, rotated_days_ago);
        k.origin = "EXTERNAL".into();
        k.imported = Some(ImportedMaterial {
            expiration_model: Some(
                if valid_to_in_days.is_some() { "KEY_MATERIAL_EXPIRES" } else { "KEY_MATERIAL_DOES_NOT_EXPIRE" }.into(),
            ),
            valid_to: valid_to_in_days.map(|d| now() + Duration::days(d)),
            materials: vec![],
        });
        k
    }

    #[test]
    fn imported_key_material_expiry_is_shown_and_raised_inside_the_lead_time() {
        let r = rule(Some(365), 7);
        // Material expiring in 5 days on a key rotated on schedule: ALERT, with the date.
        let k = imported(100, &[], Some(5));
        let j = judge_key(&k, Some(&r), now());
        assert_eq!(j.status, Status::Alert, "{}", j.reason);
        assert!(j.reason.starts_with("imported key material expires 2026-11-28 (in 5 d"), "{}", j.reason);
        assert!(j.reason.contains("policy alerts 14 d before expiry"), "{}", j.reason);
        assert!(j.action.starts_with("reimport the key material before 2026-11-28"), "{}", j.action);
        assert_eq!(j.due, Some(now() + Duration::days(5)), "Due shows the expiry");
        assert!(j.status.fails_check());
        // Siblings: 13 d ALERT; 14 d and 40 d inside the lead time (14 + 30 d): Due soon; 60 d: OK, still shown.
        for (days, want) in [(13, Status::Alert), (14, Status::DueSoon), (40, Status::DueSoon), (60, Status::Ok)] {
            let j = judge_key(&imported(100, &[], Some(days)), Some(&r), now());
            assert_eq!(j.status, want, "{days} d: {}", j.reason);
            assert!(j.reason.contains("imported key material expires"), "{}", j.reason);
        }
        // Material that does not expire: judged by rotation alone.
        let j = judge_key(&imported(100, &[], None), Some(&r), now());
        assert_eq!(j.status, Status::Ok, "{}", j.reason);
        assert!(!j.reason.contains("expire"), "{}", j.reason);
        // A rule without a rotation period still raises the expiry: the key becomes unusable.
        assert_eq!(judge_key(&imported(100, &[], Some(5)), Some(&rule(None, 7)), now()).status, Status::Alert);
        // Expiry and an overdue rotation: the worse decides, both are said.
        let j = judge_key(&imported(800, &[], Some(20)), Some(&r), now());
        assert_eq!(j.status, Status::Alert);
        assert!(j.reason.contains("overdue") && j.reason.contains("expires 2026-12-13"), "{}", j.reason);
        assert_eq!(j.due, Some(now() - Duration::days(435)), "the earlier date");
    }

    #[test]
    fn symmetric_imported_keys_are_rotated_on_demand() {
        let r = rule(Some(365), 7);
        // Rotated on demand 30 days ago (ListKeyRotations): OK.
        let j = judge_key(&imported(800, &[30], None), Some(&r), now());
        assert_eq!(j.status, Status::Ok, "{}", j.reason);
        assert!(j.reason.contains("(30 d ago)"), "{}", j.reason);
        // 800 days old, never rotated, under a yearly rule: overdue past the threshold.
        let j = judge_key(&imported(800, &[], None), Some(&r), now());
        assert_eq!(j.status, Status::Alert, "{}", j.reason);
        assert!(j.reason.contains("435 d overdue"), "{}", j.reason);
        assert!(j.action.starts_with(ON_DEMAND_IMPORTED_ROTATION), "{}", j.action);
        // 370 days: overdue inside the threshold.
        assert_eq!(judge_key(&imported(370, &[], None), Some(&r), now()).status, Status::Overdue);
        // The history unread: Unknown, with the permission to grant — not judged from creation.
        let mut denied = imported(10, &[], None);
        denied.rotation = Fetched::Denied;
        let j = judge_key(&denied, Some(&r), now());
        assert_eq!(j.status, Status::Unknown, "{}", j.reason);
        assert!(j.action.contains("grant kms:ListKeyRotations"), "{}", j.action);
        // Imported asymmetric or HMAC material cannot be rotated on demand: a new key.
        let mut hmac = imported(800, &[], None);
        hmac.spec = "HMAC_256".into();
        hmac.rotation = Fetched::NotApplicable;
        assert!(judge_key(&hmac, Some(&r), now()).action.starts_with(MANUAL_ROTATION));
    }

    #[test]
    fn pending_import_says_whether_material_was_lost_or_never_imported() {
        let r = rule(Some(365), 7);
        // Material expired 3 days ago: KMS deleted it, the key is PendingImport.
        let mut expired = imported(100, &[], Some(-3));
        expired.state = KeyState::PendingImport;
        let j = judge_key(&expired, Some(&r), now());
        assert_eq!(j.status, Status::Alert, "{}", j.reason);
        assert!(j.reason.starts_with("imported key material expired 2026-11-20 (3 d ago)"), "{}", j.reason);
        assert!(j.action.starts_with("reimport the same key material"), "{}", j.action);
        // Listed material no longer imported, no expiry: deleted (DeleteImportedKeyMaterial).
        let mut deleted = imported(100, &[], None);
        deleted.state = KeyState::PendingImport;
        if let Some(m) = deleted.imported.as_mut() {
            m.expiration_model = None;
            m.materials = vec![KeyMaterial { imported: false, current: true, valid_to: None }];
        }
        let j = judge_key(&deleted, Some(&r), now());
        assert_eq!(j.status, Status::Alert, "{}", j.reason);
        assert!(j.reason.contains("deleted"), "{}", j.reason);
        // Never imported: nothing to rotate yet, and nothing lost.
        let mut fresh = imported(1, &[], None);
        fresh.state = KeyState::PendingImport;
        fresh.imported = Some(ImportedMaterial::default());
        let j = judge_key(&fresh, Some(&r), now());
        assert_eq!(j.status, Status::NotApplicable, "{}", j.reason);
        assert!(j.reason.contains("awaiting imported key material"), "{}", j.reason);
        // An expired key material on a cached Enabled key is ALERT too.
        let j = judge_key(&imported(100, &[], Some(-1)), Some(&r), now());
        assert_eq!(j.status, Status::Alert, "{}", j.reason);
        assert!(j.reason.contains("expired"), "{}", j.reason);
    }

    #[test]
    fn a_secret_replaced_by_hand_counts_from_its_current_version() {
        let r = rule(Some(90), 3);
        let mut s = secret("eu-north-1", "JWT_SECRET", Some(90));
        s.last_rotated = Some(now() - Duration::days(400));
        s.next_rotation = Some(now() + Duration::days(20));
        s.current_version_created = Fetched::Ok(now() - Duration::days(10));
        let j = judge_secret(&s, Some(&r), now());
        assert_eq!(j.status, Status::Ok, "{}", j.reason);
        assert!(
            j.reason.contains("(10 d ago)") && j.reason.contains("value replaced outside rotation"),
            "{}",
            j.reason
        );
        // The rotation is newer than the version: the rotation counts.
        s.last_rotated = Some(now() - Duration::days(5));
        assert!(judge_secret(&s, Some(&r), now()).reason.contains("(5 d ago)"));
        // Never rotated, value put by hand 95 days ago after creation 200 days ago: Alert.
        s.last_rotated = None;
        s.created = Some(now() - Duration::days(200));
        s.current_version_created = Fetched::Ok(now() - Duration::days(95));
        assert_eq!(judge_secret(&s, Some(&r), now()).status, Status::Alert);
        // The version's date unread: an OK by the rotation stands, and says so...
        s.last_rotated = Some(now() - Duration::days(5));
        s.current_version_created = Fetched::Denied;
        let j = judge_secret(&s, Some(&r), now());
        assert_eq!(j.status, Status::Ok, "{}", j.reason);
        assert!(j.reason.contains("could not be read (denied)"), "{}", j.reason);
        // ...a finding does not (the value may have been replaced since): Unknown, and the
        // advice follows the failure.
        s.last_rotated = Some(now() - Duration::days(400));
        let j = judge_secret(&s, Some(&r), now());
        assert_eq!(j.status, Status::Unknown, "{}", j.reason);
        assert!(j.reason.starts_with("last change cannot be determined"), "{}", j.reason);
        assert!(j.reason.contains("by its last rotation alone: ALERT"), "{}", j.reason);
        assert!(j.action.contains("secretsmanager:ListSecretVersionIds"), "{}", j.action);
        s.current_version_created = Fetched::Throttled;
        let j = judge_secret(&s, Some(&r), now());
        assert_eq!(j.status, Status::Unknown);
        assert!(j.action.to_lowercase().contains("retry"), "{}", j.action);
    }

    #[test]
    fn a_rotation_whose_next_date_passed_is_failing() {
        let r = rule(Some(90), 3);
        let mut s = secret("eu-north-1", "JWT_SECRET", Some(30));
        s.last_rotated = Some(now() - Duration::days(40));
        s.next_rotation = Some(now() - Duration::days(10));
        let j = judge_secret(&s, Some(&r), now());
        assert_eq!(j.status, Status::Overdue, "{}", j.reason);
        assert!(j.reason.contains("rotation failing"), "{}", j.reason);
        assert!(j.action.starts_with("the rotation is failing"), "{}", j.action);
        // Inside the day of grace, or rotation off: not failing.
        s.next_rotation = Some(now() - Duration::hours(12));
        assert_eq!(judge_secret(&s, Some(&r), now()).status, Status::Ok);
        s.next_rotation = Some(now() - Duration::days(10));
        s.rotation_enabled = false;
        assert!(!judge_secret(&s, Some(&r), now()).reason.contains("failing"));
        // Failing and past the policy's threshold: stays ALERT.
        s.rotation_enabled = true;
        s.last_rotated = Some(now() - Duration::days(100));
        assert_eq!(judge_secret(&s, Some(&r), now()).status, Status::Alert);
    }

    #[test]
    fn schedule_expressions_are_compared_with_the_policy() {
        for (expr, want) in [
            ("rate(10 days)", Some(10)),
            ("rate(1 day)", Some(1)),
            ("rate(4 hours)", Some(1)),
            ("rate(120 days)", Some(120)),
            ("cron(0 16 1,15 * ? *)", Some(17)),
            ("cron(0 8 ? * MON *)", Some(7)),
            ("cron(0 8 ? * MON,THU *)", Some(4)),
            ("cron(0 0 1 * ? *)", Some(31)),
            ("cron(0 0 1 */3 ? *)", Some(93)),
            ("cron(0 0 1 JAN,JUL ? *)", Some(186)),
            ("cron(0 4 ? * 2#1 *)", Some(35)),
            ("cron(0 4 * * ? *)", Some(1)),
            ("rate(soon)", None),
            ("at(2026-01-01T00:00:00)", None),
        ] {
            assert_eq!(schedule_period_days(expr), want, "{expr}");
        }
        let r = rule(Some(90), 3);
        let mut s = secret("eu-north-1", "JWT_SECRET", None);
        s.rotation_enabled = true;
        s.last_rotated = Some(now() - Duration::days(10));
        s.rotation_schedule = Some("cron(0 0 1 */6 ? *)".into());
        let j = judge_secret(&s, Some(&r), now());
        assert!(j.reason.contains("rotates every 186 d but the policy requires 90 d"), "{}", j.reason);
        s.rotation_schedule = Some("rate(30 days)".into());
        assert!(!judge_secret(&s, Some(&r), now()).reason.contains("rotates every"));
        s.rotation_schedule = Some("cron(bogus)".into());
        assert!(judge_secret(&s, Some(&r), now()).reason.contains("not understood"));
        // AutomaticallyAfterDays, when reported, is the period Secrets Manager keeps.
        s.rotation_days = Some(120);
        assert!(judge_secret(&s, Some(&r), now()).reason.contains("rotates every 120 d"));
    }

    #[test]
    fn not_applicable_is_never_a_failure() {
        let r = rule(Some(365), 7);
        let mut pending = key_created(900, false, &[]);
        pending.state = KeyState::PendingDeletion;
        pending.deletion_date = Some(now() + Duration::days(18));
        let mut aws = key_created(900, false, &[]);
        aws.manager = KeyManager::Aws;
        let mut disabled = key_created(900, false, &[]);
        disabled.state = KeyState::Disabled;
        let mut rsa = key_created(900, false, &[]);
        rsa.spec = "RSA_2048".into();
        for (k, r) in [(pending, &r), (aws, &r), (disabled, &r), (rsa, &rule(None, 7))] {
            let j = judge_key(&k, Some(r), now());
            assert_eq!(j.status, Status::NotApplicable, "{}", j.reason);
            assert!(!j.status.fails_check());
        }
    }

    #[test]
    fn missing_data_is_unknown_not_ok() {
        let r = rule(Some(365), 7);
        let mut k = key_created(10, true, &[]);
        k.rotation = Fetched::Denied;
        let j = judge_key(&k, Some(&r), now());
        assert_eq!(j.status, Status::Unknown);
        assert!(j.action.contains("kms:GetKeyRotationStatus"));
        let j = judge_key(&key_created(10, true, &[]), None, now());
        assert_eq!(j.status, Status::Unknown);
        assert!(j.reason.contains("unmanaged"));
    }

    #[test]
    fn external_items_alert_inside_their_lead_time() {
        let today = now().date_naive();
        let x = |days: i64, lead: i64| ExternalItem {
            name: "TLS".into(),
            owner: String::new(),
            kind: String::new(),
            expires: Some(today + chrono::Days::new(days as u64)),
            last_rotated: None,
            rotation: None,
            alert_before: Days(lead),
        };
        assert_eq!(judge_external(&x(10, 14), 30, today).status, Status::Alert);
        assert_eq!(judge_external(&x(20, 14), 30, today).status, Status::DueSoon);
        assert_eq!(judge_external(&x(90, 60), 30, today).status, Status::DueSoon);
        assert_eq!(judge_external(&x(200, 60), 30, today).status, Status::Ok);
        let mut expired = x(0, 14);
        expired.expires = Some(today - chrono::Days::new(1));
        assert_eq!(judge_external(&expired, 30, today).status, Status::Alert);
    }

    #[test]
    fn rules_match_by_arn_then_alias_then_tag() {
        let mut p = Policy::default_policy().expect("default policy");
        let mut k = key("eu-north-1", "drop-kyc-key", KeyState::Enabled);
        assert_eq!(p.rule_for_key(&k).map(|r| r.owner.as_str()), Some("security-team"));
        k.aliases = vec!["other".into()];
        assert!(p.rule_for_key(&k).is_none());
        let mut by_tag = rule(Some(30), 1);
        by_tag.selector = Selector::Tag("classification".into(), "L4".into());
        by_tag.owner = "by-tag".into();
        p.keys.push(by_tag);
        k.tags = Fetched::Ok([("classification".to_owned(), "L4".to_owned())].into());
        assert_eq!(p.rule_for_key(&k).map(|r| r.owner.as_str()), Some("by-tag"));
        let mut by_arn = rule(Some(30), 1);
        by_arn.selector = Selector::Arn(k.arn.clone());
        by_arn.owner = "by-arn".into();
        p.keys.push(by_arn);
        assert_eq!(p.rule_for_key(&k).map(|r| r.owner.as_str()), Some("by-arn"));
    }
}
