//! The inventory: KMS keys and Secrets Manager secrets of every selected region, as plain
//! values. Built by `aws/`, judged by the policy, drawn by `ui/`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A KMS key state, as the KMS API names them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    PendingImport,
    PendingReplicaDeletion,
    Unavailable,
    Creating,
    Updating,
    /// DescribeKey was denied or failed: the state is not known.
    Unknown,
    Other(String),
}

impl KeyState {
    pub fn parse(s: &str) -> Self {
        match s {
            "Enabled" => Self::Enabled,
            "Disabled" => Self::Disabled,
            "PendingDeletion" => Self::PendingDeletion,
            "PendingImport" => Self::PendingImport,
            "PendingReplicaDeletion" => Self::PendingReplicaDeletion,
            "Unavailable" => Self::Unavailable,
            "Creating" => Self::Creating,
            "Updating" => Self::Updating,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Self::Enabled => "Enabled",
            Self::Disabled => "Disabled",
            Self::PendingDeletion => "PendingDeletion",
            Self::PendingImport => "PendingImport",
            Self::PendingReplicaDeletion => "PendingReplicaDeletion",
            Self::Unavailable => "Unavailable",
            Self::Creating => "Creating",
            Self::Updating => "Updating",
            Self::Unknown => "unknown",
            Self::Other(s) => s,
        }
    }
}

/// Who manages a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyManager {
    Customer,
    Aws,
}

/// A piece of metadata that needs its own API call: it may be denied or not apply,
/// and that must never hide the rest of the row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "status", content = "value", rename_all = "snake_case")]
pub enum Fetched<T> {
    Ok(T),
    /// The caller may not read it (AccessDenied on that call for that key).
    Denied,
    /// It does not apply to this item (e.g. rotation of an asymmetric key).
    NotApplicable,
    /// Not read (yet): fetched on demand, or a cache from before it existed.
    #[default]
    NotFetched,
    /// The service throttled the call (after the SDK's retries).
    Throttled,
    /// The call failed for another reason (the message says which call and why).
    Failed(String),
}

impl<T> Fetched<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Fetched::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// A short label for a cell that has no value.
    pub fn missing_label(&self) -> &str {
        match self {
            Fetched::Ok(_) => "",
            Fetched::Denied => "denied",
            Fetched::NotApplicable => "n/a",
            Fetched::NotFetched => "…",
            Fetched::Throttled => "throttled",
            Fetched::Failed(_) => "error",
        }
    }

    /// Why the value is missing when a read failed (denied, throttled, failed); `None`
    /// when it was read, does not apply, or was not read yet.
    pub fn failure(&self) -> Option<ReadFailure> {
        match self {
            Fetched::Denied => Some(ReadFailure::Denied),
            Fetched::Throttled => Some(ReadFailure::Throttled),
            Fetched::Failed(e) => Some(ReadFailure::Failed(e.clone())),
            _ => None,
        }
    }
}

/// Why a read failed, as far as the advice is concerned: the advice follows the failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "failure", content = "message", rename_all = "snake_case")]
pub enum ReadFailure {
    /// The caller may not make the call: grant the permission.
    Denied,
    /// AWS throttled the call (after the SDK's retries): retry later, or lower concurrency.
    Throttled,
    /// Anything else (the message says which call and why).
    Failed(String),
}

impl ReadFailure {
    /// "denied", "throttled", "failed (…)".
    pub fn label(&self) -> String {
        match self {
            ReadFailure::Denied => "denied".into(),
            ReadFailure::Throttled => "throttled".into(),
            ReadFailure::Failed(m) => format!("failed ({m})"),
        }
    }

    /// What to do about a failed `call` (`service:Action`).
    pub fn advice(&self, call: &str) -> String {
        match self {
            ReadFailure::Denied => format!("grant {call} to the reviewing role, then refresh"),
            ReadFailure::Throttled => format!(
                "{call} was throttled: retry later, or lower the concurrency (fewer regions per run, not alongside other bulk readers)"
            ),
            ReadFailure::Failed(_) => format!("retry the refresh; if {call} keeps failing, see the message"),
        }
    }
}

/// A listing call (ListKeys, ListAliases, ListSecrets) that failed for a whole region:
/// what it would have listed there is not known, so nothing may be concluded from its
/// absence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingFailure {
    pub region: String,
    /// `service:Action`, e.g. `kms:ListKeys`.
    pub call: String,
    #[serde(flatten)]
    pub failure: ReadFailure,
    /// The items this listing would have shown are carried over from an earlier listing
    /// made at this time (the console keeps the last known keys or secrets of a Region it
    /// cannot list, see [`Inventory::carry_unlisted`]); `None`: none are shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_from: Option<DateTime<Utc>>,
}

impl ListingFailure {
    /// Does this failure hide items of `kind` (keys: ListKeys; secrets: ListSecrets)?
    pub fn hides(&self, kind: ItemKind) -> bool {
        match kind {
            ItemKind::Key => self.call == "kms:ListKeys",
            ItemKind::Secret => self.call == "secretsmanager:ListSecrets",
        }
    }

    /// Does it hide the names of keys (ListAliases), so name rules cannot be matched?
    pub fn hides_key_names(&self) -> bool {
        self.call == "kms:ListAliases"
    }

    pub fn describe(&self) -> String {
        format!("{} in {} {}", self.call, self.region, self.failure.label())
    }

    pub fn action(&self) -> String {
        self.failure.advice(&self.call)
    }
}

/// How a rotation happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RotationKind {
    Automatic,
    OnDemand,
}

/// One completed rotation of a key's material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationEvent {
    pub at: DateTime<Utc>,
    pub kind: RotationKind,
}

/// A key's rotation configuration and history, as KMS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KeyRotation {
    /// Automatic rotation on (GetKeyRotationStatus).
    pub enabled: bool,
    /// KMS's rotation period when reported (AWS: 90..2560 days; default 365).
    pub period_days: Option<i64>,
    /// KMS's next automatic rotation when reported.
    pub next: Option<DateTime<Utc>>,
    /// An on-demand rotation in progress since this time.
    pub on_demand_started: Option<DateTime<Utc>>,
    /// Completed rotations, oldest first (ListKeyRotations).
    pub history: Vec<RotationEvent>,
}

impl KeyRotation {
    pub fn last(&self) -> Option<&RotationEvent> {
        self.history.iter().max_by_key(|r| r.at)
    }
}

/// Who may do what with a key, summarised from its key policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KeyPolicySummary {
    /// Principals allowed kms:* or administrative actions.
    pub administrators: Vec<String>,
    /// Principals allowed cryptographic use (Encrypt, Decrypt, GenerateDataKey*, Sign, ...).
    pub users: Vec<String>,
    /// Statements that could not be read (conditions, NotAction, ...), summarised.
    pub notes: Vec<String>,
}

/// One KMS key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyItem {
    pub region: String,
    pub key_id: String,
    pub arn: String,
    /// Alias names without the `alias/` prefix, sorted.
    pub aliases: Vec<String>,
    pub description: String,
    pub state: KeyState,
    pub manager: KeyManager,
    pub spec: String,
    pub usage: String,
    pub origin: String,
    pub created: Option<DateTime<Utc>>,
    pub deletion_date: Option<DateTime<Utc>>,
    /// `PRIMARY` or `REPLICA` for multi-Region keys.
    pub multi_region: Option<String>,
    /// Why some of this key's metadata is missing (e.g. DescribeKey denied).
    pub problem: Option<String>,
    /// The custom key store, when the key lives in one (rotation does not apply).
    #[serde(default)]
    pub custom_key_store: Option<String>,
    #[serde(default)]
    pub rotation: Fetched<KeyRotation>,
    #[serde(default)]
    pub tags: Fetched<BTreeMap<String, String>>,
    /// Read on demand (detail pane), not on every refresh.
    #[serde(default)]
    pub key_policy: Fetched<KeyPolicySummary>,
    /// Imported key material (Origin EXTERNAL): when it expires, and what KMS lists of it.
    #[serde(default)]
    pub imported: Option<ImportedMaterial>,
    /// A multi-Region key's primary and replicas (DescribeKey's MultiRegionConfiguration).
    #[serde(default)]
    pub multi_region_keys: Option<MultiRegionKeys>,
}

/// A key's imported key material, as DescribeKey and ListKeyRotations report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImportedMaterial {
    /// KeyMetadata.ExpirationModel: `KEY_MATERIAL_EXPIRES` or `KEY_MATERIAL_DOES_NOT_EXPIRE`
    /// (absent before the first import).
    pub expiration_model: Option<String>,
    /// KeyMetadata.ValidTo: when the earliest key material permanently associated with the
    /// key expires; KMS then deletes it and the key becomes unusable (PendingImport).
    pub valid_to: Option<DateTime<Utc>>,
    /// Every key material KMS lists for a symmetric key (ListKeyRotations with
    /// IncludeKeyMaterial ALL_KEY_MATERIAL); empty where that does not apply or was not read.
    pub materials: Vec<KeyMaterial>,
}

/// One key material of a symmetric key with imported material (RotationsListEntry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMaterial {
    /// ImportState IMPORTED (false: PENDING_IMPORT, i.e. expired or deleted, or never imported).
    pub imported: bool,
    /// KeyMaterialState CURRENT (used to encrypt).
    pub current: bool,
    /// Its ValidTo, when it expires.
    pub valid_to: Option<DateTime<Utc>>,
}

impl ImportedMaterial {
    /// The date the key's material expires or expired: ValidTo, else the newest ValidTo
    /// of the materials KMS lists.
    pub fn expiry(&self) -> Option<DateTime<Utc>> {
        self.valid_to.or_else(|| self.materials.iter().filter_map(|m| m.valid_to).max())
    }

    /// Was material ever imported (so a PendingImport key lost it: expired or deleted)?
    pub fn ever_imported(&self) -> bool {
        self.valid_to.is_some() || !self.materials.is_empty()
    }
}

/// A key in another Region (ARN + Region), as MultiRegionConfiguration names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionalKey {
    pub arn: String,
    pub region: String,
}

/// MultiRegionConfiguration: the primary key and the replica keys' Regions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRegionKeys {
    /// MultiRegionKeyType: `PRIMARY` or `REPLICA`.
    pub key_type: String,
    pub primary: Option<RegionalKey>,
    /// The Regions of the replica keys (ReplicaKeys).
    pub replica_regions: Vec<String>,
}

impl KeyItem {
    /// The name an operator knows the key by: its first alias, else its key id.
    pub fn display_name(&self) -> &str {
        self.aliases.first().map(String::as_str).unwrap_or(&self.key_id)
    }

    /// The primary key of a multi-Region replica (MultiRegionKeyType REPLICA), when it is one.
    pub fn replica_of(&self) -> Option<&RegionalKey> {
        let mr = self.multi_region_keys.as_ref()?;
        mr.primary.as_ref().filter(|p| mr.key_type == "REPLICA" && p.arn != self.arn)
    }

    /// The Regions of a multi-Region primary key's replicas (empty otherwise).
    pub fn replica_regions(&self) -> &[String] {
        match &self.multi_region_keys {
            Some(mr) if mr.key_type == "PRIMARY" => &mr.replica_regions,
            _ => &[],
        }
    }
}

/// One Secrets Manager secret. Its value is never fetched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretItem {
    pub region: String,
    pub name: String,
    pub arn: String,
    pub description: String,
    pub rotation_enabled: bool,
    pub rotation_days: Option<i64>,
    pub last_rotated: Option<DateTime<Utc>>,
    pub last_accessed: Option<DateTime<Utc>>,
    pub next_rotation: Option<DateTime<Utc>>,
    pub created: Option<DateTime<Utc>>,
    pub deleted: Option<DateTime<Utc>>,
    /// The KMS key protecting it, as AWS reports it (id, ARN or alias); `None`: aws/secretsmanager.
    pub kms_key: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Any change to the secret (value, tags, description, rotation) — LastChangedDate.
    #[serde(default)]
    pub last_changed: Option<DateTime<Utc>>,
    /// RotationRules.ScheduleExpression (`rate(10 days)`, `cron(0 16 1,15 * ? *)`).
    #[serde(default)]
    pub rotation_schedule: Option<String>,
    /// When the AWSCURRENT version was created (ListSecretVersionIds): a value replaced by
    /// hand is a change too. Read only when LastChangedDate is newer than the last rotation.
    #[serde(default)]
    pub current_version_created: Fetched<DateTime<Utc>>,
    /// The secret's primary Region when it is a replica (PrimaryRegion differs from `region`).
    #[serde(default)]
    pub primary_region: Option<String>,
}

/// Where keydeck's dual-approval requests live: one secret each, `keydeck/approvals/<id>`,
/// tagged `keydeck:approval` (see `aws::approvals`).
pub const APPROVALS_PREFIX: &str = "keydeck/approvals/";
pub const APPROVAL_TAG: &str = "keydeck:approval";

impl SecretItem {
    /// Is this one of keydeck's approval requests (named under [`APPROVALS_PREFIX`] and
    /// tagged [`APPROVAL_TAG`])? Those are not inventory: they hold no secret and are in
    /// no policy. Both marks are needed, so tagging a real secret does not hide it, and a
    /// foreign secret under the prefix stays visible (the approvals store lists it as
    /// malformed).
    pub fn is_approval_request(&self) -> bool {
        self.name.starts_with(APPROVALS_PREFIX) && self.tags.contains_key(APPROVAL_TAG)
    }

    /// Is this a replica of a secret whose primary lives in another Region?
    pub fn replica_of(&self) -> Option<&str> {
        self.primary_region.as_deref().filter(|p| *p != self.region)
    }

    /// Should the AWSCURRENT version's date be read? Only when something changed after
    /// the last rotation (or creation): a value put by hand moves LastChangedDate.
    pub fn needs_current_version(&self) -> bool {
        match (self.last_changed, self.last_rotated.or(self.created)) {
            (Some(changed), Some(base)) => changed > base + chrono::Duration::minutes(1),
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// What one region's inventory fetch produced. A failed call leaves a problem and an
/// empty list for that part; the rest still loads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RegionInventory {
    pub region: String,
    pub keys: Vec<KeyItem>,
    pub secrets: Vec<SecretItem>,
    pub problems: Vec<String>,
    /// Listing calls that failed in this region (also in `problems`, as text).
    #[serde(default)]
    pub unlisted: Vec<ListingFailure>,
}

/// The kind of an inventory row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemKind {
    Key,
    Secret,
}

/// The whole inventory of the selected regions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub regions: Vec<RegionInventory>,
    pub fetched_at: Option<DateTime<Utc>>,
}

impl Inventory {
    pub fn keys(&self) -> impl Iterator<Item = &KeyItem> {
        self.regions.iter().flat_map(|r| r.keys.iter())
    }

    pub fn secrets(&self) -> impl Iterator<Item = &SecretItem> {
        self.regions.iter().flat_map(|r| r.secrets.iter())
    }

    pub fn problems(&self) -> impl Iterator<Item = &String> {
        self.regions.iter().flat_map(|r| r.problems.iter())
    }

    pub fn unlisted(&self) -> impl Iterator<Item = &ListingFailure> {
        self.regions.iter().flat_map(|r| r.unlisted.iter())
    }

    /// Keep what `previous` listed where this inventory could not list: in each Region
    /// whose kms:ListKeys (or secretsmanager:ListSecrets) failed here and listed nothing,
    /// the keys (or secrets) `previous` holds there, the failure marked with when they were
    /// listed. An endpoint that stopped answering, a throttled or denied listing, never
    /// empties the console; the failure still makes its rules "not checked".
    pub fn carry_unlisted(&mut self, previous: &Inventory) {
        for r in &mut self.regions {
            let Some(prev) = previous.regions.iter().find(|p| p.region == r.region) else { continue };
            for f in &mut r.unlisted {
                let listed_at =
                    |kind| prev.unlisted.iter().find(|p| p.hides(kind)).map_or(previous.fetched_at, |p| p.carried_from);
                if f.hides(ItemKind::Key) && r.keys.is_empty() && !prev.keys.is_empty() {
                    r.keys = prev.keys.clone();
                    f.carried_from = listed_at(ItemKind::Key);
                } else if f.hides(ItemKind::Secret) && r.secrets.is_empty() && !prev.secrets.is_empty() {
                    r.secrets = prev.secrets.clone();
                    f.carried_from = listed_at(ItemKind::Secret);
                }
            }
        }
    }

    /// The failed listing whose items of `kind` in `region` are carried over from an
    /// earlier listing, if they are.
    pub fn carried(&self, region: &str, kind: ItemKind) -> Option<&ListingFailure> {
        self.unlisted().find(|f| f.region == region && f.hides(kind) && f.carried_from.is_some())
    }

    /// Does every Region's every listing hold what AWS listed now (nothing failed to list,
    /// nothing carried over)? Only such an inventory replaces the cache.
    pub fn is_complete(&self) -> bool {
        !self.unlisted().any(|f| f.hides(ItemKind::Key) || f.hides(ItemKind::Secret))
    }

    /// The key in `region` that a reference names: key id, key ARN, `alias/NAME` or alias ARN.
    pub fn find_key(&self, region: &str, r: &str) -> Option<&KeyItem> {
        let alias = super::reference::alias_name_of(r);
        self.keys()
            .filter(|k| k.region == region)
            .find(|k| k.key_id == r || k.arn == r || alias.is_some_and(|a| k.aliases.iter().any(|x| x == a)))
    }

    /// The secret in `region` that a reference names: its name or ARN.
    pub fn find_secret(&self, region: &str, r: &str) -> Option<&SecretItem> {
        let name = super::reference::secret_name(r);
        self.secrets().filter(|s| s.region == region).find(|s| s.name == r || s.arn == r || s.name == name)
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use chrono::TimeZone;

    pub fn key(region: &str, alias: &str, state: KeyState) -> KeyItem {
        KeyItem {
            region: region.into(),
            key_id: format!("id-{alias}"),
            arn: format!("arn:aws:kms:{region}:123456789012:key/id-{alias}"),
            aliases: vec![alias.into()],
            description: String::new(),
            state,
            manager: KeyManager::Customer,
            spec: "SYMMETRIC_DEFAULT".into(),
            usage: "ENCRYPT_DECRYPT".into(),
            origin: "AWS_KMS".into(),
            created: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single(),
            deletion_date: None,
            multi_region: None,
            problem: None,
            custom_key_store: None,
            rotation: Fetched::Ok(KeyRotation { enabled: true, ..Default::default() }),
            tags: Fetched::Ok(BTreeMap::new()),
            key_policy: Fetched::NotFetched,
            imported: None,
            multi_region_keys: None,
        }
    }

    pub fn secret(region: &str, name: &str, rotation_days: Option<i64>) -> SecretItem {
        SecretItem {
            region: region.into(),
            name: name.into(),
            arn: format!("arn:aws:secretsmanager:{region}:123456789012:secret:{name}-AbCdEf"),
            description: String::new(),
            rotation_enabled: rotation_days.is_some(),
            rotation_days,
            last_rotated: None,
            last_accessed: None,
            next_rotation: None,
            created: None,
            deleted: None,
            kms_key: None,
            tags: BTreeMap::new(),
            last_changed: None,
            rotation_schedule: None,
            current_version_created: Fetched::NotFetched,
            primary_region: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn problems_are_collected_across_regions() {
        let inv = Inventory {
            regions: vec![
                RegionInventory {
                    region: "eu-north-1".into(),
                    keys: vec![key("eu-north-1", "a", KeyState::Enabled)],
                    ..Default::default()
                },
                RegionInventory {
                    region: "eu-west-1".into(),
                    problems: vec!["kms:ListKeys denied".into()],
                    ..Default::default()
                },
            ],
            fetched_at: None,
        };
        assert_eq!(inv.problems().count(), 1);
        assert_eq!(inv.keys().count(), 1);
    }

    /// eu-north-1 with one key and one secret, eu-west-1 with one key, listed at `at`.
    fn listed(at: DateTime<Utc>) -> Inventory {
        Inventory {
            regions: vec![
                RegionInventory {
                    region: "eu-north-1".into(),
                    keys: vec![key("eu-north-1", "a", KeyState::Enabled)],
                    secrets: vec![secret("eu-north-1", "S", Some(90))],
                    ..Default::default()
                },
                RegionInventory {
                    region: "eu-west-1".into(),
                    keys: vec![key("eu-west-1", "b", KeyState::Enabled)],
                    ..Default::default()
                },
            ],
            fetched_at: Some(at),
        }
    }

    fn unlisted(region: &str, call: &str, failure: ReadFailure) -> ListingFailure {
        ListingFailure { region: region.into(), call: call.into(), failure, carried_from: None }
    }

    #[test]
    fn a_region_that_could_not_be_listed_keeps_what_was_last_listed_there() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 11, 29, 14, 0, 0).single().expect("date");
        let first = listed(t0);
        assert!(first.is_complete());
        // The endpoint stops answering for eu-north-1's keys; eu-west-1 lists as before.
        let failed = |at| {
            let mut inv = listed(at);
            inv.regions[0].keys.clear();
            inv.regions[0].unlisted.push(unlisted(
                "eu-north-1",
                "kms:ListKeys",
                ReadFailure::Failed("endpoint unreachable".into()),
            ));
            inv
        };
        let mut second = failed(t0 + chrono::Duration::minutes(1));
        assert!(!second.is_complete(), "an incomplete listing never replaces the cache");
        second.carry_unlisted(&first);
        assert_eq!(second.keys().map(|k| k.key_id.as_str()).collect::<Vec<_>>(), ["id-a", "id-b"]);
        assert_eq!(second.carried("eu-north-1", ItemKind::Key).and_then(|f| f.carried_from), Some(t0));
        assert!(second.carried("eu-north-1", ItemKind::Secret).is_none(), "the secrets were listed");
        assert!(second.carried("eu-west-1", ItemKind::Key).is_none());
        // Failing again: still the items, still the time they were listed.
        let mut third = failed(t0 + chrono::Duration::minutes(2));
        third.carry_unlisted(&second);
        assert_eq!(third.keys().count(), 2);
        assert_eq!(third.carried("eu-north-1", ItemKind::Key).and_then(|f| f.carried_from), Some(t0));
        // A denied ListSecrets carries the secrets; a failed ListAliases carries nothing.
        let mut fourth = listed(t0);
        fourth.regions[0].secrets.clear();
        fourth.regions[0].unlisted.push(unlisted("eu-north-1", "secretsmanager:ListSecrets", ReadFailure::Denied));
        fourth.regions[1].unlisted.push(unlisted("eu-west-1", "kms:ListAliases", ReadFailure::Throttled));
        fourth.carry_unlisted(&first);
        assert_eq!(fourth.secrets().count(), 1);
        assert!(fourth.regions[1].unlisted.iter().all(|f| f.carried_from.is_none()));
    }

    #[test]
    fn approval_requests_need_both_the_prefix_and_the_tag() {
        let mut s = fixtures::secret("eu-north-1", "keydeck/approvals/r1", None);
        assert!(!s.is_approval_request(), "a foreign secret under the prefix stays in the inventory");
        s.tags.insert(APPROVAL_TAG.into(), "request".into());
        assert!(s.is_approval_request());
        let mut real = fixtures::secret("eu-north-1", "JWT_SECRET", Some(90));
        real.tags.insert(APPROVAL_TAG.into(), "request".into());
        assert!(!real.is_approval_request(), "tagging a real secret does not hide it");
    }

    #[test]
    fn fetched_cells_serialise_with_their_status() {
        let f: Fetched<u8> = Fetched::Denied;
        assert_eq!(serde_json::to_string(&f).expect("json"), r#"{"status":"denied"}"#);
        assert_eq!(f.missing_label(), "denied");
    }
}
