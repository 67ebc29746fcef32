//! The inventory judged against the policy: a status per item, drift between the policy
//! and what AWS holds, and the external items. Pure: inventory + policy + clock in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::inventory::{Inventory, ItemKind, KeyManager};
use super::policy::{Classification, Policy, Selector};
use super::status::{judge_external, judge_key, judge_secret, Judgement, Status};

/// One judged item of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssessedItem {
    pub kind: ItemKind,
    /// A stable identity (ARN): the cursor follows it across refreshes.
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub region: String,
    pub state: String,
    pub owner: Option<String>,
    pub classification: Option<Classification>,
    /// Whether the item is covered by a policy rule.
    pub managed: bool,
    pub aws_managed: bool,
    /// For keys pending deletion: when KMS destroys the material.
    pub deletion_date: Option<DateTime<Utc>>,
    pub tags: BTreeMap<String, String>,
    #[serde(flatten)]
    pub judgement: Judgement,
}

impl AssessedItem {
    /// The `/` filter: every term must occur in the name, an alias, the region, the
    /// state, the status, the owner, the classification, the kind or a tag.
    pub fn matches(&self, query: &str) -> bool {
        let class = self.classification.map(|c| format!("{c:?}")).unwrap_or_default();
        let fields = [
            self.name.as_str(),
            self.region.as_str(),
            self.state.as_str(),
            self.judgement.status.label(),
            self.owner.as_deref().unwrap_or(""),
            class.as_str(),
            kind_word(self.kind),
        ];
        let tags = self.tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]);
        super::filter::matches(query, fields.into_iter().chain(self.aliases.iter().map(String::as_str)).chain(tags))
    }
}

/// An item the policy names but keydeck cannot query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssessedExternal {
    pub name: String,
    pub kind: String,
    pub owner: String,
    #[serde(flatten)]
    pub judgement: Judgement,
}

/// A difference between the policy and what is in AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "drift", rename_all = "snake_case")]
pub enum Drift {
    /// In AWS, in no policy rule.
    Unmanaged { kind: ItemKind, name: String, region: String, id: String },
    /// In the policy, not found in any selected region.
    Missing { kind: ItemKind, name: String, expected_regions: Vec<String> },
    /// Found in a region the policy does not expect.
    UnexpectedRegion { kind: ItemKind, name: String, region: String, expected_regions: Vec<String>, id: String },
    /// The policy expects it only in regions that were not selected: not checked.
    RegionNotSelected { kind: ItemKind, name: String, expected_regions: Vec<String> },
}

impl Drift {
    pub fn describe(&self) -> String {
        match self {
            Drift::Unmanaged { kind, name, region, .. } => {
                format!("{} {name} in {region} is not in the policy (unmanaged)", kind_word(*kind))
            }
            Drift::Missing { kind, name, expected_regions } => format!(
                "{} {name} is in the policy but was not found (expected in {})",
                kind_word(*kind),
                expected_regions.join(", ")
            ),
            Drift::UnexpectedRegion { kind, name, region, expected_regions, .. } => format!(
                "{} {name} found in {region}; the policy expects {}",
                kind_word(*kind),
                expected_regions.join(", ")
            ),
            Drift::RegionNotSelected { kind, name, expected_regions } => format!(
                "{} {name} not checked: its region {} is not selected (--region)",
                kind_word(*kind),
                expected_regions.join(", ")
            ),
        }
    }

    pub fn action(&self) -> &'static str {
        match self {
            Drift::Unmanaged { .. } => "add a rule to the policy, or retire the item",
            Drift::Missing { .. } => "create it, or remove the rule from the policy",
            Drift::UnexpectedRegion { .. } => "move it, or add the region to the rule",
            Drift::RegionNotSelected { .. } => "run with --region for that region",
        }
    }

    /// The item this drift is about, when it exists in AWS.
    pub fn item_id(&self) -> Option<&str> {
        match self {
            Drift::Unmanaged { id, .. } | Drift::UnexpectedRegion { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Does `--check` fail on it? (Missing items do; the rest need a look.)
    pub fn fails_check(&self) -> bool {
        matches!(self, Drift::Missing { .. })
    }
}

pub fn kind_word(k: ItemKind) -> &'static str {
    match k {
        ItemKind::Key => "key",
        ItemKind::Secret => "secret",
    }
}

/// The whole judged inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Assessment {
    pub at: Option<DateTime<Utc>>,
    /// Sorted: most severe first, then by name, then region.
    pub items: Vec<AssessedItem>,
    pub drift: Vec<Drift>,
    pub external: Vec<AssessedExternal>,
}

impl Assessment {
    pub fn item(&self, id: &str) -> Option<&AssessedItem> {
        self.items.iter().find(|i| i.id == id)
    }

    pub fn drift_for<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Drift> + 'a {
        self.drift.iter().filter(move |d| d.item_id() == Some(id))
    }

    /// Does anything fail `--check` (Overdue, Alert, missing)?
    pub fn fails_check(&self) -> bool {
        self.items.iter().any(|i| i.judgement.status.fails_check())
            || self.external.iter().any(|x| x.judgement.status.fails_check())
            || self.drift.iter().any(Drift::fails_check)
    }

    /// Count of items per status (items and external).
    pub fn count(&self, s: Status) -> usize {
        self.items.iter().filter(|i| i.judgement.status == s).count()
            + self.external.iter().filter(|x| x.judgement.status == s).count()
    }
}

/// Judge every item of `inv` against `policy` at `now`. `selected` are the regions the
/// inventory covers (for missing-item drift).
pub fn assess(inv: &Inventory, policy: &Policy, now: DateTime<Utc>, selected: &[String]) -> Assessment {
    let mut items = Vec::new();
    let mut drift = Vec::new();
    for k in inv.keys() {
        let aws_managed = k.manager == KeyManager::Aws;
        let rule = if aws_managed { None } else { policy.rule_for_key(k) };
        let judgement = judge_key(k, rule, now);
        if !aws_managed {
            match rule {
                None => drift.push(Drift::Unmanaged {
                    kind: ItemKind::Key,
                    name: k.display_name().to_owned(),
                    region: k.region.clone(),
                    id: k.arn.clone(),
                }),
                Some(r) if !r.regions.is_empty() && !r.regions.contains(&k.region) => {
                    drift.push(Drift::UnexpectedRegion {
                        kind: ItemKind::Key,
                        name: k.display_name().to_owned(),
                        region: k.region.clone(),
                        expected_regions: r.regions.clone(),
                        id: k.arn.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        items.push(AssessedItem {
            kind: ItemKind::Key,
            id: k.arn.clone(),
            name: k.display_name().to_owned(),
            aliases: k.aliases.clone(),
            region: k.region.clone(),
            state: k.state.label().to_owned(),
            owner: rule.map(|r| r.owner.clone()),
            classification: rule.map(|r| r.classification),
            managed: rule.is_some(),
            aws_managed,
            deletion_date: k.deletion_date,
            tags: k.tags.ok().cloned().unwrap_or_default(),
            judgement,
        });
    }
    for s in inv.secrets() {
        let rule = policy.rule_for_secret(s);
        match rule {
            None => drift.push(Drift::Unmanaged {
                kind: ItemKind::Secret,
                name: s.name.clone(),
                region: s.region.clone(),
                id: s.arn.clone(),
            }),
            Some(r) if !r.regions.is_empty() && !r.regions.contains(&s.region) => drift.push(Drift::UnexpectedRegion {
                kind: ItemKind::Secret,
                name: s.name.clone(),
                region: s.region.clone(),
                expected_regions: r.regions.clone(),
                id: s.arn.clone(),
            }),
            Some(_) => {}
        }
        items.push(AssessedItem {
            kind: ItemKind::Secret,
            id: s.arn.clone(),
            name: s.name.clone(),
            aliases: vec![],
            region: s.region.clone(),
            state: if s.deleted.is_some() { "PendingDeletion".into() } else { "Active".into() },
            owner: rule.map(|r| r.owner.clone()),
            classification: rule.map(|r| r.classification),
            managed: rule.is_some(),
            aws_managed: false,
            deletion_date: s.deleted,
            tags: s.tags.clone(),
            judgement: judge_secret(s, rule, now),
        });
    }
    missing(policy, inv, selected, &mut drift);
    items.sort_by(|a, b| {
        a.judgement
            .status
            .cmp(&b.judgement.status)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.region.cmp(&b.region))
    });
    let today = now.date_naive();
    let due_soon = policy.keys.first().map(|r| r.due_soon.0).unwrap_or(30);
    let mut external: Vec<AssessedExternal> = policy
        .external
        .iter()
        .map(|x| AssessedExternal {
            name: x.name.clone(),
            kind: x.kind.clone(),
            owner: x.owner.clone(),
            judgement: judge_external(x, due_soon, today),
        })
        .collect();
    external.sort_by(|a, b| a.judgement.status.cmp(&b.judgement.status).then_with(|| a.name.cmp(&b.name)));
    Assessment { at: Some(now), items, drift, external }
}

fn missing(policy: &Policy, inv: &Inventory, selected: &[String], drift: &mut Vec<Drift>) {
    let key_found = |sel: &Selector| match sel {
        Selector::Name(n) => inv.keys().any(|k| k.aliases.iter().any(|a| a == n)),
        Selector::Arn(a) => inv.keys().any(|k| &k.arn == a),
        Selector::Tag(..) => true, // a tag rule covers whatever carries the tag; nothing can be "missing"
    };
    let secret_found = |sel: &Selector| match sel {
        Selector::Name(n) => inv.secrets().any(|s| &s.name == n),
        Selector::Arn(a) => inv.secrets().any(|s| &s.arn == a),
        Selector::Tag(..) => true,
    };
    let rules = policy
        .keys
        .iter()
        .map(|r| (ItemKind::Key, r, key_found(&r.selector)))
        .chain(policy.secrets.iter().map(|r| (ItemKind::Secret, r, secret_found(&r.selector))));
    for (kind, rule, found) in rules {
        if found {
            continue;
        }
        let name = match &rule.selector {
            Selector::Name(n) | Selector::Arn(n) => n.clone(),
            Selector::Tag(..) => continue,
        };
        let checked = rule.regions.is_empty() || rule.regions.iter().any(|r| selected.contains(r));
        if checked {
            drift.push(Drift::Missing { kind, name, expected_regions: rule.regions.clone() });
        } else {
            drift.push(Drift::RegionNotSelected { kind, name, expected_regions: rule.regions.clone() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inventory::fixtures::{key, secret};
    use crate::domain::inventory::{KeyState, RegionInventory};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("date")
    }

    fn inv() -> Inventory {
        let mut wrong_region = key("eu-west-1", "drop-kyc-key", KeyState::Enabled);
        wrong_region.created = Some(now());
        Inventory {
            regions: vec![
                RegionInventory {
                    region: "eu-north-1".into(),
                    keys: vec![
                        key("eu-north-1", "scratch", KeyState::Enabled),
                        key("eu-north-1", "drop-national-id-key", KeyState::Enabled),
                    ],
                    secrets: vec![secret("eu-north-1", "JWT_SECRET", Some(90)), secret("eu-north-1", "STRAY", None)],
                    problems: vec![],
                },
                RegionInventory {
                    region: "eu-west-1".into(),
                    keys: vec![wrong_region],
                    secrets: vec![],
                    problems: vec![],
                },
            ],
            fetched_at: Some(now()),
        }
    }

    #[test]
    fn drift_finds_unmanaged_missing_and_unexpected_regions() {
        let p = Policy::default_policy().expect("policy");
        let regions = vec!["eu-north-1".to_owned(), "eu-west-1".to_owned()];
        let a = assess(&inv(), &p, now(), &regions);
        let text: Vec<String> = a.drift.iter().map(Drift::describe).collect();
        assert!(text.iter().any(|t| t.contains("key scratch in eu-north-1 is not in the policy")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("secret STRAY")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("key drop-kyc-key found in eu-west-1")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("key drop-backup-key is in the policy but was not found")), "{text:#?}");
        assert!(a.fails_check());
        // Only eu-north-1 selected: eu-west-1-only rules are "not checked", not missing.
        let a = assess(&inv(), &p, now(), &regions[..1]);
        assert!(a
            .drift
            .iter()
            .any(|d| matches!(d, Drift::RegionNotSelected { name, .. } if name == "drop-backup-key")));
        assert!(!a.drift.iter().any(|d| matches!(d, Drift::Missing { name, .. } if name == "drop-backup-key")));
    }

    #[test]
    fn items_sort_by_severity_then_name() {
        let p = Policy::default_policy().expect("policy");
        let a = assess(&inv(), &p, now(), &["eu-north-1".to_owned(), "eu-west-1".to_owned()]);
        let statuses: Vec<Status> = a.items.iter().map(|i| i.judgement.status).collect();
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(statuses, sorted);
        assert!(a.items.iter().any(|i| i.name == "scratch" && !i.managed && i.judgement.status == Status::Unknown));
    }

    #[test]
    fn empty_inventory_is_fine() {
        let p = Policy::default_policy().expect("policy");
        let a = assess(&Inventory::default(), &p, now(), &[]);
        assert!(a.items.is_empty());
        assert!(a.drift.iter().all(|d| matches!(d, Drift::Missing { .. } | Drift::RegionNotSelected { .. })));
    }
}
