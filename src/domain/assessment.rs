//! The inventory judged against the policy: a status per item, drift between the policy
//! and what AWS holds, and the external items. Pure: inventory + policy + clock in.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::inventory::{Inventory, ItemKind, KeyItem, KeyManager, KeyState, ListingFailure, ReadFailure};
use super::policy::{Classification, ItemRule, Policy, Selector};
use super::runbook::{TAG_INCIDENT, TAG_REPLACES};
use super::status::{
    judge_external, judge_key, judge_replaced, judge_secret, Judgement, RuleMatch, Status, Undetermined,
};

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
    /// Why `inventory --check` fails on this item, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_failure: Option<String>,
    /// The Regions its replicas live in (a replicated secret is one finding, judged and
    /// acted on in its primary Region; a multi-Region key's replicas are rows of their own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<String>,
    /// For a multi-Region replica key: its primary, "<alias or key id> (<Region>)". It is
    /// judged by its primary's rule and never advised for deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_of: Option<String>,
    /// For a key an incident replaced (runbook kms-key-compromise): its replacement's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// For an incident's replacement key: the ARN of the key it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The incident that replaced the key, or made this replacement (`keydeck:incident`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Not in the latest listing (it failed): the item as an earlier listing at this time
    /// showed it ([`Inventory::carry_unlisted`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<DateTime<Utc>>,
}

impl AssessedItem {
    /// The `/` filter: every term must occur in the name, the ARN (so a key id from a
    /// CloudTrail record finds its key), an alias, the region, the state, the status, the
    /// owner, the classification, the kind or a tag.
    pub fn matches(&self, query: &str) -> bool {
        let class = self.classification.map(|c| format!("{c:?}")).unwrap_or_default();
        let fields = [
            self.name.as_str(),
            self.id.as_str(),
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
    /// Not found, but a region where it may live could not be listed (throttled, denied):
    /// not checked, never "missing".
    NotChecked { kind: ItemKind, name: String, expected_regions: Vec<String>, unlisted: Vec<ListingFailure> },
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
            Drift::NotChecked { kind, name, unlisted, .. } => format!(
                "{} {name} not checked: {}",
                kind_word(*kind),
                unlisted.iter().map(ListingFailure::describe).collect::<Vec<_>>().join("; ")
            ),
        }
    }

    pub fn action(&self) -> String {
        match self {
            Drift::Unmanaged { .. } => "add a rule to the policy, or retire the item".into(),
            Drift::Missing { .. } => "create it, or remove the rule from the policy".into(),
            Drift::UnexpectedRegion { .. } => "move it, or add the region to the rule".into(),
            Drift::RegionNotSelected { .. } => "run with --region for that region".into(),
            Drift::NotChecked { unlisted, .. } => {
                let mut advice: Vec<String> = unlisted.iter().map(ListingFailure::action).collect();
                advice.dedup();
                advice.join("; ")
            }
        }
    }

    /// The item this drift is about, when it exists in AWS.
    pub fn item_id(&self) -> Option<&str> {
        match self {
            Drift::Unmanaged { id, .. } | Drift::UnexpectedRegion { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Does `--check` fail on it? (Missing items do, and rules that could not be
    /// checked because their region could not be listed; the rest need a look.)
    pub fn fails_check(&self) -> bool {
        matches!(self, Drift::Missing { .. } | Drift::NotChecked { .. })
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
    /// Regions and services that could not be listed: what is absent there is unknown.
    pub unlisted: Vec<ListingFailure>,
}

/// One reason `inventory --check` fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckFailure {
    /// The item, rule, region or service it is about.
    pub subject: String,
    pub reason: String,
}

impl Assessment {
    pub fn item(&self, id: &str) -> Option<&AssessedItem> {
        self.items.iter().find(|i| i.id == id)
    }

    pub fn drift_for<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Drift> + 'a {
        self.drift.iter().filter(move |d| d.item_id() == Some(id))
    }

    /// Does anything fail `--check`? It fails closed: Overdue, Alert, missing, a governed
    /// item that cannot be judged, a governed key scheduled for deletion, a region or
    /// service that could not be listed.
    pub fn fails_check(&self) -> bool {
        !self.check_failures().is_empty()
    }

    /// Every reason `--check` fails, one per item, rule, region or service.
    pub fn check_failures(&self) -> Vec<CheckFailure> {
        let mut out: Vec<CheckFailure> = self
            .items
            .iter()
            .filter_map(|i| {
                let reason = i.check_failure.clone()?;
                Some(CheckFailure { subject: format!("{} {} ({})", kind_word(i.kind), i.name, i.region), reason })
            })
            .collect();
        out.extend(self.external.iter().filter(|x| x.judgement.status.fails_check()).map(|x| CheckFailure {
            subject: format!("external {}", x.name),
            reason: format!("{}: {}", x.judgement.status.label(), x.judgement.reason),
        }));
        out.extend(self.drift.iter().filter(|d| d.fails_check()).map(|d| CheckFailure {
            subject: match d {
                Drift::Missing { kind, name, .. } | Drift::NotChecked { kind, name, .. } => {
                    format!("{} {name}", kind_word(*kind))
                }
                _ => String::new(),
            },
            reason: d.describe(),
        }));
        out.extend(self.unlisted.iter().map(|u| CheckFailure {
            subject: format!("{} in {}", u.call, u.region),
            reason: format!("could not be listed ({}): what it holds there is not checked", u.failure.label()),
        }));
        out
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
    let aliases_failed =
        |region: &str| inv.unlisted().find(|f| f.region == region && f.hides_key_names()).map(|f| &f.failure);
    let lineages = Lineages::new(inv);
    for k in inv.keys() {
        let aws_managed = k.manager == KeyManager::Aws;
        let replica = if aws_managed { None } else { replica_of(inv, policy, k, &aliases_failed) };
        let lineage = if aws_managed { None } else { lineages.of(k) };
        let key_rule = |k: &KeyItem| policy.key_rule(k, aliases_failed(&k.region));
        let found = match (&replica, &lineage) {
            _ if aws_managed => RuleMatch::NoRule,
            (Some(r), _) => r.found.clone(),
            // A replaced key whose aliases moved is its replacement's: judged by its rule.
            (None, Some(Lineage::ReplacedBy { by, .. })) if k.aliases.is_empty() => key_rule(by),
            // A replacement whose aliases have not moved yet is judged by the old key's rule.
            (None, Some(Lineage::Replaces { old, .. })) => match key_rule(k) {
                RuleMatch::Rule(r) => RuleMatch::Rule(r),
                _ => key_rule(old),
            },
            (None, _) => key_rule(k),
        };
        let rule = found.rule();
        let mut judgement = match (&found, &lineage) {
            (_, Some(Lineage::ReplacedBy { by, incident })) if k.aliases.is_empty() => {
                judge_replaced(k, by.display_name(), *incident, now)
            }
            // A failed DescribeKey says more than the rule it hides.
            (RuleMatch::Undetermined(u), _) if k.state != KeyState::Unknown => u.judgement(),
            (RuleMatch::Default(d), _) => by_default(judge_key(k, Some(d), now)),
            _ => judge_key(k, rule, now),
        };
        if let Some(l) = &lineage {
            l.annotate(k, &mut judgement);
        }
        if let Some(r) = &replica {
            judgement = r.judged(judgement);
        } else if !k.replica_regions().is_empty() {
            let unselected: Vec<&str> =
                k.replica_regions().iter().filter(|r| !selected.contains(r)).map(String::as_str).collect();
            judgement
                .reason
                .push_str(&format!("; multi-Region primary, replicas in {}", k.replica_regions().join(", ")));
            if !unselected.is_empty() {
                judgement.reason.push_str(&format!(" ({} not selected: not checked)", unselected.join(", ")));
            }
        }
        let undetermined = matches!(found, RuleMatch::Undetermined(_));
        let replaced = matches!(lineage, Some(Lineage::ReplacedBy { .. })) && k.aliases.is_empty();
        let mut check_failure = item_check_failure(&judgement, rule.is_some() || undetermined);
        if let Some(r) = rule.filter(|r| r.rotation.is_some() && !replaced) {
            if matches!(k.state, KeyState::PendingDeletion | KeyState::PendingReplicaDeletion) {
                check_failure.get_or_insert_with(|| governed_deletion(r));
            }
        }
        if !aws_managed {
            match rule {
                // A replica is its primary's: the primary's drift covers it. A replaced key
                // and a replacement are their incident's: not unmanaged.
                None if undetermined || replica.is_some() || lineage.is_some() => {}
                // The rule selects the replacement by the alias it took over; the replaced
                // key is where the incident left it.
                Some(_) if replaced => {}
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
        // A replica has no alias of its own in its Region: it goes by its primary's name.
        // A replaced key and an unaliased replacement go by the name the alias gives.
        let name = match (replica.as_ref().and_then(|r| r.primary_name.as_deref()), &lineage) {
            (Some(primary), _) if k.aliases.is_empty() => format!("{primary} (replica)"),
            (_, Some(Lineage::ReplacedBy { by, .. })) if k.aliases.is_empty() => {
                format!("{} (replaced)", by.display_name())
            }
            (_, Some(Lineage::Replaces { old, .. })) if k.aliases.is_empty() => {
                format!("{} (replacement)", old.display_name())
            }
            _ => k.display_name().to_owned(),
        };
        items.push(AssessedItem {
            kind: ItemKind::Key,
            id: k.arn.clone(),
            name,
            aliases: k.aliases.clone(),
            region: k.region.clone(),
            state: k.state.label().to_owned(),
            owner: found.judged_by().map(|r| r.owner.clone()),
            classification: found.judged_by().map(|r| r.classification),
            managed: rule.is_some(),
            aws_managed,
            deletion_date: k.deletion_date,
            tags: k.tags.ok().cloned().unwrap_or_default(),
            judgement,
            check_failure,
            replicas: k.replica_regions().to_vec(),
            replica_of: replica.map(|r| r.label),
            replaced_by: lineage.as_ref().and_then(Lineage::replaced_by),
            replaces: lineage.as_ref().and_then(Lineage::replaces),
            incident: lineage.as_ref().and_then(Lineage::incident),
            listed_at: None,
        });
    }
    // Replicas whose primary is in the inventory are shown beside it, not judged twice.
    let mut replicas: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for s in inv.secrets() {
        if let Some(p) = s.replica_of() {
            if inv.secrets().any(|x| x.region == p && x.name == s.name && x.replica_of().is_none()) {
                replicas.entry((p.to_owned(), s.name.clone())).or_default().push(s.region.clone());
            }
        }
    }
    for s in inv.secrets() {
        if s.replica_of().is_some_and(|p| replicas.contains_key(&(p.to_owned(), s.name.clone()))) {
            continue;
        }
        let found = policy.secret_rule(s);
        let rule = found.rule();
        let mut judgement = match &found {
            RuleMatch::Default(d) => by_default(judge_secret(s, Some(d), now)),
            _ => judge_secret(s, rule, now),
        };
        if let Some(p) = s.replica_of() {
            // Its primary was not listed here: judged from the replica, acted on there.
            judgement.reason = format!("replica of the secret in {p} (not in this inventory): {}", judgement.reason);
            if !judgement.action.is_empty() {
                judgement.action = format!("in its primary Region {p}: {}", judgement.action);
            }
        }
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
            owner: found.judged_by().map(|r| r.owner.clone()),
            classification: found.judged_by().map(|r| r.classification),
            managed: rule.is_some(),
            aws_managed: false,
            deletion_date: s.deleted,
            tags: s.tags.clone(),
            check_failure: item_check_failure(&judgement, rule.is_some()),
            judgement,
            replicas: replicas.get(&(s.region.clone(), s.name.clone())).cloned().unwrap_or_default(),
            replica_of: None,
            replaced_by: None,
            replaces: None,
            incident: None,
            listed_at: None,
        });
    }
    missing(policy, inv, selected, &mut drift);
    // Items carried over from an earlier listing say so, and when.
    let carried: HashSet<&str> =
        inv.unlisted().filter(|f| f.carried_from.is_some()).map(|f| f.region.as_str()).collect();
    for it in items.iter_mut().filter(|i| carried.contains(i.region.as_str())) {
        if let Some(f) = inv.carried(&it.region, it.kind) {
            it.listed_at = f.carried_from;
            let when = f.carried_from.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
            it.judgement.reason = format!(
                "as listed {when} ({} in {} {} since): {}",
                f.call,
                f.region,
                f.failure.label(),
                it.judgement.reason
            );
        }
    }
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
    Assessment { at: Some(now), items, drift, external, unlisted: inv.unlisted().cloned().collect() }
}

/// A key's place in an incident's replacement (runbook kms-key-compromise, step
/// create-key): the replacement carries `keydeck:replaces` = the old key's id and
/// `keydeck:incident`, and is created in the old key's Region. The tags are a claim of
/// whoever can tag keys; they only name and explain, they never make a key OK.
enum Lineage<'a> {
    /// An incident replaced this key by `by`.
    ReplacedBy { by: &'a KeyItem, incident: Option<&'a str> },
    /// This key is the replacement of `old`.
    Replaces { old: &'a KeyItem, incident: Option<&'a str> },
}

/// Every replacement in an inventory, indexed once: (Region, key id) of a replaced key →
/// its replacement, and → the replaced key itself. Both hold only keys of a replacement,
/// so an estate without incidents costs one tag lookup per key.
struct Lineages<'a> {
    successor: HashMap<(&'a str, &'a str), &'a KeyItem>,
    replaced: HashMap<(&'a str, &'a str), &'a KeyItem>,
}

fn tag<'a>(k: &'a KeyItem, name: &str) -> Option<&'a str> {
    k.tags.ok().and_then(|t| t.get(name)).map(String::as_str)
}

impl<'a> Lineages<'a> {
    fn new(inv: &'a Inventory) -> Self {
        let mut successor = HashMap::new();
        for k in inv.keys() {
            if let Some(old) = tag(k, TAG_REPLACES).filter(|old| *old != k.key_id) {
                successor.entry((k.region.as_str(), old)).or_insert(k);
            }
        }
        let mut replaced = HashMap::new();
        if !successor.is_empty() {
            for k in inv.keys() {
                let at = (k.region.as_str(), k.key_id.as_str());
                if successor.contains_key(&at) {
                    replaced.insert(at, k);
                }
            }
        }
        Self { successor, replaced }
    }

    fn of(&self, k: &'a KeyItem) -> Option<Lineage<'a>> {
        if self.successor.is_empty() {
            return None;
        }
        let region = k.region.as_str();
        // A replacement replaced in turn (a second incident) is the newer incident's.
        if let Some(by) = self.successor.get(&(region, k.key_id.as_str())) {
            return Some(Lineage::ReplacedBy { by, incident: tag(by, TAG_INCIDENT) });
        }
        let old = tag(k, TAG_REPLACES).and_then(|id| self.replaced.get(&(region, id)))?;
        Some(Lineage::Replaces { old, incident: tag(k, TAG_INCIDENT) })
    }
}

impl Lineage<'_> {
    /// Says whose replacement it is while the old key still holds the aliases (both keys).
    fn annotate(&self, k: &KeyItem, j: &mut Judgement) {
        let incident = |i: Option<&str>| i.map(|i| format!(" in incident {i}")).unwrap_or_default();
        match self {
            Lineage::ReplacedBy { by, incident: i } if !k.aliases.is_empty() => {
                j.reason = format!("{}; replaced by {}{} (aliases not moved yet)", j.reason, by.key_id, incident(*i));
            }
            Lineage::Replaces { old, incident: i } if k.aliases.is_empty() => {
                j.reason = format!(
                    "replacement of {}{} (aliases not moved yet): {}",
                    old.display_name(),
                    incident(*i),
                    j.reason
                );
            }
            _ => {}
        }
    }

    fn replaced_by(&self) -> Option<String> {
        match self {
            Lineage::ReplacedBy { by, .. } => Some(by.arn.clone()),
            Lineage::Replaces { .. } => None,
        }
    }

    fn replaces(&self) -> Option<String> {
        match self {
            Lineage::Replaces { old, .. } => Some(old.arn.clone()),
            Lineage::ReplacedBy { .. } => None,
        }
    }

    fn incident(&self) -> Option<String> {
        match self {
            Lineage::ReplacedBy { incident, .. } | Lineage::Replaces { incident, .. } => incident.map(str::to_owned),
        }
    }
}

/// A multi-Region replica key and the rule it is judged by: its own if a rule selects it,
/// else its primary's (MultiRegionConfiguration.PrimaryKey), found in the inventory by
/// ARN; when the primary is not in the inventory (its Region not selected, or not listed),
/// a rule naming the primary's ARN, else the rule cannot be determined.
struct Replica<'a> {
    found: RuleMatch<'a>,
    /// "<primary alias or key id> (<Region>)".
    label: String,
    primary_region: String,
    /// The primary's name (its alias), when the inventory holds it.
    primary_name: Option<String>,
}

impl Replica<'_> {
    /// The replica's verdict says whose it is, and acts on the primary: rotation is the
    /// primary's (replicas share its key material), and a replica is never advised for
    /// deletion for having no alias or rule of its own.
    fn judged(&self, mut j: Judgement) -> Judgement {
        if let RuleMatch::Undetermined(u) = &self.found {
            if u.what == "primary key" {
                j.reason = format!(
                    "replica of {}: rule cannot be determined (its primary is not in this inventory)",
                    self.label
                );
                j.action = format!(
                    "run with --region {} as well: a replica is judged by its primary's rule",
                    self.primary_region
                );
                return j;
            }
        }
        j.reason = format!("replica of {}: {}", self.label, j.reason);
        if j.action.contains("schedule its deletion") {
            j.action = format!("add a [[keys]] rule for its primary {}", self.label);
        } else if !j.action.is_empty() && !matches!(self.found, RuleMatch::Undetermined(_)) {
            j.action = format!("on its primary {} in {}: {}", self.label, self.primary_region, j.action);
        }
        j
    }
}

fn replica_of<'a>(
    inv: &Inventory,
    policy: &'a Policy,
    k: &KeyItem,
    aliases_failed: &dyn Fn(&str) -> Option<&'a ReadFailure>,
) -> Option<Replica<'a>> {
    let primary = k.replica_of()?;
    let visible = inv.keys().find(|p| p.arn == primary.arn);
    let label = format!("{} ({})", visible.map_or(primary.arn.as_str(), |p| p.display_name()), primary.region);
    let found = if let Some(own) = policy.rule_for_key(k) {
        RuleMatch::Rule(own)
    } else if let Some(p) = visible {
        policy.key_rule(p, aliases_failed(&p.region))
    } else if let Some(r) = policy.keys.iter().find(|r| matches!(&r.selector, Selector::Arn(a) if *a == primary.arn)) {
        RuleMatch::Rule(r)
    } else {
        RuleMatch::Undetermined(Undetermined {
            what: "primary key",
            call: format!("kms:DescribeKey in {}", primary.region),
            failure: ReadFailure::Failed("its primary is not in this inventory".into()),
        })
    };
    let primary_name = visible.map(|p| p.display_name().to_owned());
    Some(Replica { found, label, primary_region: primary.region.clone(), primary_name })
}

/// Why `--check` fails on one item: Overdue or ALERT, or governed (or possibly governed)
/// and not judged.
fn item_check_failure(j: &Judgement, governed: bool) -> Option<String> {
    if j.status.fails_check() {
        return Some(format!("{}: {}", j.status.label(), j.reason));
    }
    if governed && j.status == Status::Unknown {
        return Some(format!("cannot be judged: {}", j.reason));
    }
    None
}

/// An unmanaged item judged by the policy's default rule says so.
fn by_default(mut j: Judgement) -> Judgement {
    j.reason = format!("not in the policy (unmanaged), judged by its default rule: {}", j.reason);
    if j.status.needs_attention() && !j.action.is_empty() {
        j.action = format!("{}; or add a rule for it", j.action);
    }
    j
}

fn governed_deletion(r: &ItemRule) -> String {
    let every = r.rotation.map(|d| format!(" every {} d", d.0)).unwrap_or_default();
    format!("scheduled for deletion though its rule requires rotation{every} (Security Hub KMS.3): cancel the deletion, or change the rule")
}

fn missing(policy: &Policy, inv: &Inventory, selected: &[String], drift: &mut Vec<Drift>) {
    let key_found = |sel: &Selector| match sel {
        Selector::Name(n) => inv.keys().any(|k| k.aliases.iter().any(|a| a == n)),
        Selector::Arn(a) => inv.keys().any(|k| &k.arn == a),
        // a tag rule covers whatever carries the tag, a default rule whatever no other
        // rule selects: nothing can be "missing"
        Selector::Tag(..) | Selector::Default => true,
    };
    let secret_found = |sel: &Selector| match sel {
        Selector::Name(n) => inv.secrets().any(|s| &s.name == n),
        Selector::Arn(a) => inv.secrets().any(|s| &s.arn == a),
        Selector::Tag(..) | Selector::Default => true,
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
            Selector::Tag(..) | Selector::Default => continue,
        };
        let checked = rule.regions.is_empty() || rule.regions.iter().any(|r| selected.contains(r));
        // Where it may live: a region that could not be listed says nothing about it.
        let may_live = |region: &str| rule.regions.is_empty() || rule.regions.iter().any(|r| r == region);
        let name_rule = matches!(rule.selector, Selector::Name(_));
        let unlisted: Vec<ListingFailure> = inv
            .unlisted()
            .filter(|f| {
                may_live(&f.region) && (f.hides(kind) || (kind == ItemKind::Key && name_rule && f.hides_key_names()))
            })
            .cloned()
            .collect();
        if checked && !unlisted.is_empty() {
            drift.push(Drift::NotChecked { kind, name, expected_regions: rule.regions.clone(), unlisted });
        } else if checked {
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
    use crate::domain::inventory::{Fetched, KeyState, ReadFailure, RegionInventory};
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
                    unlisted: vec![],
                },
                RegionInventory {
                    region: "eu-west-1".into(),
                    keys: vec![wrong_region],
                    secrets: vec![],
                    problems: vec![],
                    unlisted: vec![],
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
        // An unmanaged key is judged by the default rule (000: yearly): ~690 days old.
        assert!(a.items.iter().any(|i| i.name == "scratch" && !i.managed && i.judgement.status == Status::Alert));
    }

    fn regions() -> Vec<String> {
        vec!["eu-north-1".to_owned(), "eu-west-1".to_owned()]
    }

    /// The default policy plus a tag rule: classification=L4 keys, yearly.
    fn with_tag_rule() -> Policy {
        let mut p = Policy::default_policy().expect("policy");
        let mut r = p.keys[0].clone();
        r.selector = Selector::Tag("classification".into(), "L4".into());
        r.owner = "by-tag".into();
        r.regions = vec![];
        p.keys.push(r);
        p
    }

    fn unlisted(region: &str, call: &str, failure: ReadFailure) -> ListingFailure {
        ListingFailure { region: region.into(), call: call.into(), failure, carried_from: None }
    }

    #[test]
    fn a_failed_tag_read_never_makes_a_tag_governed_key_unmanaged() {
        let p = with_tag_rule();
        for (tags, word, advice) in [
            (Fetched::Denied, "tags denied", "grant kms:ListResourceTags"),
            (Fetched::Throttled, "tags throttled", "retry later, or lower the concurrency"),
            (Fetched::Failed("boom".into()), "tags unreadable", "retry the refresh"),
        ] {
            let mut i = inv();
            let mut k = key("eu-north-1", "l4-by-tag", KeyState::Enabled);
            k.tags = tags;
            i.regions[0].keys.push(k);
            let a = assess(&i, &p, now(), &regions());
            let it = a.items.iter().find(|i| i.name == "l4-by-tag").expect("item");
            assert_eq!(it.judgement.status, Status::Unknown);
            assert_eq!(it.judgement.reason, format!("rule cannot be determined ({word})"));
            assert!(it.judgement.action.contains(advice), "{}", it.judgement.action);
            assert!(!it.judgement.action.contains("deletion"), "{}", it.judgement.action);
            assert!(!a.drift.iter().any(|d| d.item_id() == Some(it.id.as_str())), "{:?}", a.drift);
            assert!(it.check_failure.as_deref().is_some_and(|c| c.contains("cannot be judged")));
            assert!(a.fails_check());
        }
        // Without a tag rule, unread tags decide nothing: still unmanaged.
        let mut i = inv();
        i.regions[0].keys[0].tags = Fetched::Denied;
        let a = assess(&i, &Policy::default_policy().expect("policy"), now(), &regions());
        assert!(a.drift.iter().any(|d| matches!(d, Drift::Unmanaged { name, .. } if name == "scratch")));
        // Aliases unread in a region: name rules cannot be ruled out there.
        let mut i = inv();
        let mut k = key("eu-north-1", "x", KeyState::Enabled);
        k.aliases.clear();
        i.regions[0].keys = vec![k];
        i.regions[0].unlisted.push(unlisted("eu-north-1", "kms:ListAliases", ReadFailure::Denied));
        let a = assess(&i, &Policy::default_policy().expect("policy"), now(), &regions());
        let it = a.items.iter().find(|i| i.name == "id-x").expect("item");
        assert_eq!(it.judgement.reason, "rule cannot be determined (aliases denied)");
        assert!(it.judgement.action.contains("grant kms:ListAliases"), "{}", it.judgement.action);
        assert!(!a.drift.iter().any(|d| matches!(d, Drift::Unmanaged { .. } if d.item_id() == Some(it.id.as_str()))));
        assert!(
            a.drift.iter().any(|d| matches!(d, Drift::NotChecked { name, .. } if name == "drop-national-id-key")),
            "{:?}",
            a.drift
        );
    }

    #[test]
    fn a_region_that_could_not_be_listed_makes_its_rules_not_checked_never_missing() {
        let p = Policy::default_policy().expect("policy");
        for (call, failure, advice) in [
            ("kms:ListKeys", ReadFailure::Throttled, "retry later, or lower the concurrency"),
            ("kms:ListKeys", ReadFailure::Denied, "grant kms:ListKeys"),
            ("secretsmanager:ListSecrets", ReadFailure::Denied, "grant secretsmanager:ListSecrets"),
            ("secretsmanager:ListSecrets", ReadFailure::Throttled, "retry later"),
        ] {
            let mut i = inv();
            // eu-west-1 could not be listed: what it holds is not known.
            i.regions[1].keys.clear();
            i.regions[1].unlisted.push(unlisted("eu-west-1", call, failure.clone()));
            if call.starts_with("secretsmanager") {
                i.regions[0].secrets.clear();
                i.regions[0].unlisted.push(unlisted("eu-north-1", call, failure.clone()));
            }
            let a = assess(&i, &p, now(), &regions());
            let kind = if call.starts_with("kms") { ItemKind::Key } else { ItemKind::Secret };
            // Rules of that kind that could live in an unlisted region are never "missing".
            let unlisted_regions: Vec<&str> = i.unlisted().map(|u| u.region.as_str()).collect();
            let missing: Vec<&Drift> = a
                .drift
                .iter()
                .filter(|d| {
                    matches!(d, Drift::Missing { kind: k, expected_regions: r, .. }
                    if *k == kind && (r.is_empty() || r.iter().any(|x| unlisted_regions.contains(&x.as_str()))))
                })
                .collect();
            assert!(missing.is_empty(), "{call}: {missing:?}");
            let name = if kind == ItemKind::Key { "drop-backup-key" } else { "JWT_SECRET" };
            let d = a
                .drift
                .iter()
                .find(|d| matches!(d, Drift::NotChecked { name: n, .. } if n == name))
                .unwrap_or_else(|| panic!("{call}: {:?}", a.drift));
            assert!(d.describe().contains("not checked"), "{}", d.describe());
            assert!(!d.action().contains("create"), "{}", d.action());
            assert!(d.action().contains(advice), "{call}: {}", d.action());
            assert!(a.fails_check());
            assert!(a.check_failures().iter().any(|c| c.subject.starts_with(call)), "{:?}", a.check_failures());
        }
        // A rule pinned to a region that was listed is still missing when absent.
        let mut i = inv();
        i.regions[1].unlisted.push(unlisted("eu-west-1", "kms:ListKeys", ReadFailure::Throttled));
        let a = assess(&i, &p, now(), &regions());
        assert!(
            a.drift.iter().any(|d| matches!(d, Drift::NotChecked { name, .. } if name == "drop-backup-key")),
            "eu-west-1-only rule: {:?}",
            a.drift
        );
    }

    #[test]
    fn check_fails_closed() {
        // Only an item that is in order, in a policy that governs only it: passes.
        let mut p = Policy::default_policy().expect("policy");
        p.keys.retain(|r| matches!(&r.selector, Selector::Name(n) if n == "drop-national-id-key"));
        p.secrets.clear();
        p.external.clear();
        let mut k = key("eu-north-1", "drop-national-id-key", KeyState::Enabled);
        k.created = Some(now() - chrono::Duration::days(10));
        let clean = Inventory {
            regions: vec![RegionInventory {
                region: "eu-north-1".into(),
                keys: vec![k.clone()],
                secrets: vec![],
                problems: vec![],
                unlisted: vec![],
            }],
            fetched_at: Some(now()),
        };
        let one = ["eu-north-1".to_owned()];
        let a = assess(&clean, &p, now(), &one);
        assert!(!a.fails_check(), "{:?}", a.check_failures());
        // A governed item that cannot be judged.
        let mut i = clean.clone();
        i.regions[0].keys[0].rotation = Fetched::Denied;
        let a = assess(&i, &p, now(), &one);
        let why = a.check_failures();
        assert!(why.iter().any(|c| c.reason.contains("cannot be judged: rotation status denied")), "{why:?}");
        // An unmanaged item that cannot be judged does not (it is drift, and governed by nothing).
        let mut i = clean.clone();
        let mut stray = key("eu-north-1", "stray", KeyState::Enabled);
        stray.rotation = Fetched::Denied;
        i.regions[0].keys.push(stray);
        assert!(!assess(&i, &p, now(), &one).fails_check());
        // A region or service that could not be listed.
        let mut i = clean.clone();
        i.regions[0].unlisted.push(unlisted("eu-north-1", "secretsmanager:ListSecrets", ReadFailure::Throttled));
        let a = assess(&i, &p, now(), &one);
        assert!(a.check_failures().iter().any(|c| c.subject == "secretsmanager:ListSecrets in eu-north-1"));
        // A governed key scheduled for deletion (Security Hub KMS.3), also when disabled first.
        let mut i = clean.clone();
        i.regions[0].keys[0].state = KeyState::PendingDeletion;
        i.regions[0].keys[0].deletion_date = Some(now() + chrono::Duration::days(7));
        let a = assess(&i, &p, now(), &one);
        assert_eq!(a.items[0].judgement.status, Status::NotApplicable);
        assert!(a.items[0].check_failure.as_deref().is_some_and(|c| c.contains("KMS.3")), "{:?}", a.items[0]);
        // ...but not when its rule sets no rotation.
        p.keys[0].rotation = None;
        assert!(!assess(&i, &p, now(), &one).fails_check());
    }

    #[test]
    fn keys_in_no_rule_are_drift_judged_by_the_default_rule() {
        let p = Policy::default_policy().expect("policy");
        let d = p.keys.iter().find(|r| r.selector == Selector::Default).expect("000: a default rule");
        assert_eq!(d.rotation.map(|d| d.0), Some(365));
        for (age, want) in [(40, Status::Ok), (350, Status::DueSoon), (368, Status::Overdue), (500, Status::Alert)] {
            let mut i = inv();
            i.regions[0].keys[0].created = Some(now() - chrono::Duration::days(age));
            let a = assess(&i, &p, now(), &regions());
            let it = a.items.iter().find(|i| i.name == "scratch").expect("scratch");
            assert_eq!(it.judgement.status, want, "{age}: {}", it.judgement.reason);
            assert!(!it.managed);
            assert!(it.judgement.reason.starts_with("not in the policy (unmanaged), judged by its default rule"));
            assert!(a.drift.iter().any(|d| matches!(d, Drift::Unmanaged { name, .. } if name == "scratch")));
        }
        // Asymmetric: judged by the default's period too, rotated by hand.
        let mut i = inv();
        i.regions[0].keys[0].spec = "ECC_NIST_P256".into();
        i.regions[0].keys[0].created = Some(now() - chrono::Duration::days(400));
        let a = assess(&i, &p, now(), &regions());
        let it = a.items.iter().find(|i| i.name == "scratch").expect("scratch");
        assert_eq!(it.judgement.status, Status::Alert);
        assert!(it.judgement.action.contains("rotate manually"), "{}", it.judgement.action);
        // Without a default rule: Unknown, as before.
        let mut p = p.clone();
        p.keys.retain(|r| r.selector != Selector::Default);
        let a = assess(&inv(), &p, now(), &regions());
        assert!(a.items.iter().any(|i| i.name == "scratch" && i.judgement.status == Status::Unknown));
        // A default for secrets works the same way.
        let mut by_default = p.secrets[0].clone();
        by_default.selector = Selector::Default;
        by_default.rotation = Some(crate::domain::policy::Days(30));
        p.secrets.push(by_default);
        let mut i = inv();
        i.regions[0].secrets[1].created = Some(now() - chrono::Duration::days(100));
        let a = assess(&i, &p, now(), &regions());
        let stray = a.items.iter().find(|i| i.name == "STRAY").expect("stray");
        assert_eq!(stray.judgement.status, Status::Alert, "{}", stray.judgement.reason);
        assert!(a.drift.iter().any(|d| matches!(d, Drift::Unmanaged { name, .. } if name == "STRAY")));
    }

    #[test]
    fn a_replicated_secret_is_one_finding_in_its_primary_region() {
        let p = Policy::default_policy().expect("policy");
        let mut i = inv();
        i.regions[0].secrets[0].primary_region = Some("eu-north-1".into());
        let mut replica = secret("eu-west-1", "JWT_SECRET", Some(90));
        replica.primary_region = Some("eu-north-1".into());
        i.regions[1].secrets.push(replica.clone());
        let a = assess(&i, &p, now(), &regions());
        let jwt: Vec<&AssessedItem> = a.items.iter().filter(|i| i.name == "JWT_SECRET").collect();
        assert_eq!(jwt.len(), 1, "{jwt:#?}");
        assert_eq!(jwt[0].region, "eu-north-1");
        assert_eq!(jwt[0].replicas, ["eu-west-1"]);
        assert!(!a.drift.iter().any(|d| matches!(d, Drift::UnexpectedRegion { name, .. } if name == "JWT_SECRET")));
        // Only the replica's Region selected: judged from it, acted on in the primary.
        let mut only = inv();
        only.regions[0].secrets.retain(|s| s.name != "JWT_SECRET");
        only.regions[1].secrets.push(replica);
        let a = assess(&only, &p, now(), &regions());
        let it = a.items.iter().find(|i| i.name == "JWT_SECRET").expect("replica");
        assert!(it.judgement.reason.starts_with("replica of the secret in eu-north-1"), "{}", it.judgement.reason);
        assert!(
            it.judgement.action.is_empty() || it.judgement.action.starts_with("in its primary Region eu-north-1"),
            "{}",
            it.judgement.action
        );
    }

    /// A multi-Region key: `primary` in eu-north-1 (aliases as given), its replica in eu-west-1.
    fn multi_region(primary_alias: &str) -> (KeyItem, KeyItem) {
        use crate::domain::inventory::{MultiRegionKeys, RegionalKey};
        let mut p = key("eu-north-1", primary_alias, KeyState::Enabled);
        p.key_id = "mrk-1".into();
        p.arn = "arn:aws:kms:eu-north-1:123456789012:key/mrk-1".into();
        p.created = Some(now() - chrono::Duration::days(100));
        let primary = RegionalKey { arn: p.arn.clone(), region: "eu-north-1".into() };
        p.multi_region = Some("PRIMARY".into());
        p.multi_region_keys = Some(MultiRegionKeys {
            key_type: "PRIMARY".into(),
            primary: Some(primary.clone()),
            replica_regions: vec!["eu-west-1".into()],
        });
        let mut r = p.clone();
        r.region = "eu-west-1".into();
        r.arn = "arn:aws:kms:eu-west-1:123456789012:key/mrk-1".into();
        r.aliases.clear();
        r.multi_region = Some("REPLICA".into());
        r.multi_region_keys = Some(MultiRegionKeys {
            key_type: "REPLICA".into(),
            primary: Some(primary),
            replica_regions: vec!["eu-west-1".into()],
        });
        (p, r)
    }

    #[test]
    fn a_replica_is_judged_by_its_primarys_rule_and_never_advised_for_deletion() {
        let p = Policy::default_policy().expect("policy");
        let (primary, replica) = multi_region("drop-national-id-key");
        let mut i = inv();
        i.regions[0].keys.retain(|k| k.display_name() != "drop-national-id-key");
        i.regions[0].keys.push(primary);
        i.regions[1].keys.push(replica.clone());
        let a = assess(&i, &p, now(), &regions());
        let it = a.items.iter().find(|x| x.id == replica.arn).expect("replica row");
        assert!(it.managed, "governed by its primary's rule: {it:?}");
        assert_eq!(it.owner.as_deref(), Some("security-team"));
        assert_eq!(it.judgement.status, Status::Ok, "{}", it.judgement.reason);
        assert_eq!(it.replica_of.as_deref(), Some("drop-national-id-key (eu-north-1)"));
        assert_eq!(it.name, "drop-national-id-key (replica)", "no alias of its own: its primary's name");
        assert!(it.matches(&replica.arn) && !it.matches("arn:aws:kms:eu-central-1"), "the filter reads the ARN");
        assert!(
            it.judgement.reason.starts_with("replica of drop-national-id-key (eu-north-1): "),
            "{}",
            it.judgement.reason
        );
        assert!(
            !a.drift.iter().any(|d| matches!(d, Drift::Unmanaged { id, .. } if *id == replica.arn)),
            "{:?}",
            a.drift
        );
        // Its primary lists it.
        let p_item = a.items.iter().find(|x| x.name == "drop-national-id-key").expect("primary");
        assert_eq!(p_item.replicas, ["eu-west-1"]);
        assert!(
            p_item.judgement.reason.contains("multi-Region primary, replicas in eu-west-1"),
            "{}",
            p_item.judgement.reason
        );
        // Overdue primary: the replica's action is carried out on the primary.
        let mut old = i.clone();
        for k in old.regions.iter_mut().flat_map(|r| r.keys.iter_mut()).filter(|k| k.key_id == "mrk-1") {
            k.created = Some(now() - chrono::Duration::days(400));
        }
        let a = assess(&old, &p, now(), &regions());
        let it = a.items.iter().find(|x| x.id == replica.arn).expect("replica row");
        assert_eq!(it.judgement.status, Status::Alert);
        assert!(
            it.judgement.action.starts_with("on its primary drop-national-id-key (eu-north-1) in eu-north-1: "),
            "{}",
            it.judgement.action
        );
        // A primary in no rule and a policy without a default: the replica is never told to
        // schedule its deletion, and is not drift of its own.
        let mut bare = p.clone();
        bare.keys.retain(|r| r.selector != Selector::Default);
        let (primary, replica) = multi_region("mr-stray");
        let mut i = inv();
        i.regions[0].keys.push(primary);
        i.regions[1].keys.push(replica.clone());
        let a = assess(&i, &bare, now(), &regions());
        let it = a.items.iter().find(|x| x.id == replica.arn).expect("replica row");
        assert!(!it.judgement.action.contains("deletion"), "{}", it.judgement.action);
        assert_eq!(it.judgement.action, "add a [[keys]] rule for its primary mr-stray (eu-north-1)");
        assert!(a.drift.iter().any(|d| matches!(d, Drift::Unmanaged { name, .. } if name == "mr-stray")));
        assert!(!a.drift.iter().any(|d| d.item_id() == Some(replica.arn.as_str())), "{:?}", a.drift);
    }

    /// drop-national-id-key replaced in incident inc-7 (runbook kms-key-compromise): the
    /// replacement tagged with the old key's id; `moved`: the aliases are on the replacement.
    fn replaced(old_state: KeyState, moved: bool) -> (Inventory, KeyItem, KeyItem) {
        let mut i = inv();
        let at = i.regions[0].keys.iter().position(|k| k.display_name() == "drop-national-id-key").expect("key");
        let mut old = i.regions[0].keys.remove(at);
        old.state = old_state;
        let mut new = key("eu-north-1", "drop-national-id-key", KeyState::Enabled);
        new.key_id = "id-replacement".into();
        new.arn = "arn:aws:kms:eu-north-1:123456789012:key/id-replacement".into();
        new.created = Some(now());
        new.tags = Fetched::Ok(BTreeMap::from([
            (TAG_REPLACES.to_owned(), old.key_id.clone()),
            (TAG_INCIDENT.to_owned(), "inc-7".to_owned()),
        ]));
        if moved {
            old.aliases.clear();
        } else {
            new.aliases.clear();
        }
        i.regions[0].keys.extend([old.clone(), new.clone()]);
        (i, old, new)
    }

    #[test]
    fn a_key_an_incident_replaced_is_named_by_its_replacement_and_alerts_while_enabled() {
        let p = Policy::default_policy().expect("policy");
        // Aliases moved, old key disabled (the runbook's end state): n/a, never unmanaged.
        let (i, old, new) = replaced(KeyState::Disabled, true);
        let a = assess(&i, &p, now(), &regions());
        let it = a.items.iter().find(|x| x.id == old.arn).expect("old key row");
        assert_eq!(it.name, "drop-national-id-key (replaced)");
        assert_eq!(it.judgement.status, Status::NotApplicable, "{}", it.judgement.reason);
        assert!(
            it.judgement.reason.starts_with("replaced by drop-national-id-key in incident inc-7: disabled"),
            "{}",
            it.judgement.reason
        );
        assert!(it.judgement.action.contains("schedule-deletion"), "{}", it.judgement.action);
        assert_eq!(it.replaced_by.as_deref(), Some(new.arn.as_str()));
        assert_eq!(it.incident.as_deref(), Some("inc-7"));
        assert_eq!(it.owner.as_deref(), Some("security-team"), "judged by its replacement's rule");
        assert!(it.check_failure.is_none());
        assert!(!a.drift.iter().any(|d| d.item_id() == Some(old.arn.as_str())), "not unmanaged: {:?}", a.drift);
        let n = a.items.iter().find(|x| x.id == new.arn).expect("replacement row");
        assert_eq!((n.name.as_str(), n.replaces.as_deref()), ("drop-national-id-key", Some(old.arn.as_str())));
        assert_eq!(n.judgement.status, Status::Ok, "{}", n.judgement.reason);
        // Enabled again (quarantine, or an attacker): ALERT, and --check fails on it.
        let (i, old, _) = replaced(KeyState::Enabled, true);
        let a = assess(&i, &p, now(), &regions());
        let it = a.items.iter().find(|x| x.id == old.arn).expect("old key row");
        assert_eq!(it.judgement.status, Status::Alert, "{}", it.judgement.reason);
        assert!(it.judgement.reason.contains("the compromised key is usable"), "{}", it.judgement.reason);
        assert!(it.judgement.action.contains("keydeck incident status inc-7"), "{}", it.judgement.action);
        assert!(it.check_failure.is_some());
        // Deletion scheduled: the end of it, not Security Hub KMS.3's governed deletion.
        let (i, old, _) = replaced(KeyState::PendingDeletion, true);
        let a = assess(&i, &p, now(), &regions());
        let it = a.items.iter().find(|x| x.id == old.arn).expect("old key row");
        assert_eq!(it.judgement.status, Status::NotApplicable);
        assert!(it.check_failure.is_none(), "{:?}", it.check_failure);
    }

    #[test]
    fn a_replacement_before_the_aliases_move_is_named_and_judged_by_the_old_keys_rule() {
        let p = Policy::default_policy().expect("policy");
        let (i, old, new) = replaced(KeyState::Disabled, false);
        let a = assess(&i, &p, now(), &regions());
        let n = a.items.iter().find(|x| x.id == new.arn).expect("replacement row");
        assert_eq!(n.name, "drop-national-id-key (replacement)");
        assert!(n.managed && n.owner.as_deref() == Some("security-team"), "{n:?}");
        assert!(
            n.judgement
                .reason
                .starts_with("replacement of drop-national-id-key in incident inc-7 (aliases not moved yet): "),
            "{}",
            n.judgement.reason
        );
        assert!(!a.drift.iter().any(|d| d.item_id() == Some(new.arn.as_str())), "not unmanaged: {:?}", a.drift);
        let o = a.items.iter().find(|x| x.id == old.arn).expect("old key row");
        assert_eq!(o.name, "drop-national-id-key", "still holds its alias");
        assert!(o.judgement.reason.ends_with("replaced by id-replacement in incident inc-7 (aliases not moved yet)"));
        // A tag naming no key in the Region names nothing.
        let mut stray = i.clone();
        stray.regions[0].keys.retain(|k| k.arn != old.arn);
        let a = assess(&stray, &p, now(), &regions());
        let n = a.items.iter().find(|x| x.id == new.arn).expect("replacement row");
        assert_eq!((n.replaces.as_deref(), n.name.as_str()), (None, "id-replacement"));
    }

    #[test]
    fn a_replica_whose_primary_is_not_visible_and_a_primary_whose_replica_is_not_selected() {
        let p = Policy::default_policy().expect("policy");
        let (primary, replica) = multi_region("drop-national-id-key");
        // Only eu-west-1 selected: the primary is not in the inventory.
        let mut i = inv();
        i.regions.remove(0);
        i.regions[0].keys.push(replica.clone());
        let west = ["eu-west-1".to_owned()];
        let a = assess(&i, &p, now(), &west);
        let it = a.items.iter().find(|x| x.id == replica.arn).expect("replica row");
        assert_eq!(it.judgement.status, Status::Unknown);
        assert_eq!(
            it.judgement.reason,
            "replica of arn:aws:kms:eu-north-1:123456789012:key/mrk-1 (eu-north-1): rule cannot be determined (its primary is not in this inventory)"
        );
        assert!(it.judgement.action.starts_with("run with --region eu-north-1 as well"), "{}", it.judgement.action);
        assert_eq!(it.name, replica.key_id, "no primary in view: its key id");
        assert!(!a.drift.iter().any(|d| d.item_id() == Some(replica.arn.as_str())), "{:?}", a.drift);
        assert!(it.check_failure.as_deref().is_some_and(|c| c.contains("cannot be judged")), "{it:?}");
        // A rule naming the primary's ARN judges it even so.
        let mut by_arn = p.clone();
        let mut r = by_arn.keys[0].clone();
        r.selector = Selector::Arn(primary.arn.clone());
        r.owner = "by-arn".into();
        r.regions = vec![];
        by_arn.keys.insert(0, r);
        let a = assess(&i, &by_arn, now(), &west);
        let it = a.items.iter().find(|x| x.id == replica.arn).expect("replica row");
        assert_eq!(it.owner.as_deref(), Some("by-arn"));
        assert_eq!(it.judgement.status, Status::Ok, "{}", it.judgement.reason);
        // Only eu-north-1 selected: the primary is judged, its replica's Region not checked.
        let mut i = inv();
        i.regions.truncate(1);
        i.regions[0].keys.retain(|k| k.display_name() != "drop-national-id-key");
        i.regions[0].keys.push(primary);
        let a = assess(&i, &p, now(), &regions()[..1]);
        let it = a.items.iter().find(|x| x.name == "drop-national-id-key").expect("primary");
        assert_eq!(it.judgement.status, Status::Ok);
        assert!(
            it.judgement.reason.contains("replicas in eu-west-1 (eu-west-1 not selected: not checked)"),
            "{}",
            it.judgement.reason
        );
    }

    #[test]
    fn empty_inventory_is_fine() {
        let p = Policy::default_policy().expect("policy");
        let a = assess(&Inventory::default(), &p, now(), &[]);
        assert!(a.items.is_empty());
        assert!(a.drift.iter().all(|d| matches!(d, Drift::Missing { .. } | Drift::RegionNotSelected { .. })));
    }
}
