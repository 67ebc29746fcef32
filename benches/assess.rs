//! Judge a large inventory against the default policy: `assess` runs on every refresh and
//! once a minute in the console, so its cost at estate sizes beyond the demo's matters.
//!
//!     cargo bench --bench assess
//!
//! The inventory: 10 Regions × 500 customer-managed keys (one alias each, tags, a year of
//! rotation history; every 50th key replaced by an incident, its replacement tagged
//! `keydeck:replaces`) and 10 × 100 secrets, generated deterministically. Only the public
//! inventory types are used, so the same file measures an older commit as a baseline.

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::Criterion;

use keydeck::domain::assessment::assess;
use keydeck::domain::inventory::{
    Fetched, Inventory, KeyItem, KeyManager, KeyRotation, KeyState, RegionInventory, RotationEvent, RotationKind,
    SecretItem,
};
use keydeck::domain::policy::Policy;

const REGIONS: usize = 10;
const KEYS_PER_REGION: usize = 500;
const SECRETS_PER_REGION: usize = 100;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).single().unwrap_or_else(|| panic!("date"))
}

fn key(region: &str, i: usize) -> KeyItem {
    let id = format!("{i:08x}-0000-4000-8000-{:012x}", i * 7919);
    let replaced = i % 50 == 1;
    let mut tags = BTreeMap::from([
        ("owner".to_owned(), "security-team".to_owned()),
        ("classification".to_owned(), if i.is_multiple_of(3) { "L4" } else { "L3" }.to_owned()),
    ]);
    if i % 50 == 2 {
        // The replacement of key i - 1.
        let old = i - 1;
        tags.insert("keydeck:replaces".into(), format!("{old:08x}-0000-4000-8000-{:012x}", old * 7919));
        tags.insert("keydeck:incident".into(), format!("20261101T0000{i:02}Z-bench"));
    }
    KeyItem {
        region: region.into(),
        key_id: id.clone(),
        arn: format!("arn:aws:kms:{region}:123456789012:key/{id}"),
        aliases: if replaced { vec![] } else { vec![format!("bench-key-{i}")] },
        description: "bench".into(),
        state: if replaced { KeyState::Disabled } else { KeyState::Enabled },
        manager: KeyManager::Customer,
        spec: "SYMMETRIC_DEFAULT".into(),
        usage: "ENCRYPT_DECRYPT".into(),
        origin: "AWS_KMS".into(),
        created: Some(now() - Duration::days(30 + (i % 700) as i64)),
        deletion_date: None,
        multi_region: None,
        problem: None,
        custom_key_store: None,
        rotation: Fetched::Ok(KeyRotation {
            enabled: !i.is_multiple_of(4),
            period_days: Some(365),
            history: vec![RotationEvent {
                at: now() - Duration::days((i % 400) as i64),
                kind: RotationKind::Automatic,
            }],
            ..Default::default()
        }),
        tags: Fetched::Ok(tags),
        key_policy: Fetched::NotFetched,
        imported: None,
        multi_region_keys: None,
    }
}

fn secret(region: &str, i: usize) -> SecretItem {
    let name = format!("bench/secret-{i}");
    SecretItem {
        region: region.into(),
        arn: format!("arn:aws:secretsmanager:{region}:123456789012:secret:{name}-AbCdEf"),
        name,
        description: String::new(),
        rotation_enabled: i.is_multiple_of(2),
        rotation_days: Some(90),
        last_rotated: Some(now() - Duration::days((i % 120) as i64)),
        last_accessed: None,
        next_rotation: None,
        created: Some(now() - Duration::days(400)),
        deleted: None,
        kms_key: None,
        tags: BTreeMap::new(),
        last_changed: None,
        rotation_schedule: None,
        current_version_created: Fetched::NotFetched,
        primary_region: None,
    }
}

fn inventory() -> Inventory {
    let regions = (0..REGIONS)
        .map(|r| {
            let region = format!("bench-{r}");
            RegionInventory {
                keys: (0..KEYS_PER_REGION).map(|i| key(&region, i)).collect(),
                secrets: (0..SECRETS_PER_REGION).map(|i| secret(&region, i)).collect(),
                region,
                ..Default::default()
            }
        })
        .collect();
    Inventory { regions, fetched_at: Some(now()) }
}

fn main() {
    let policy = Policy::default_policy().unwrap_or_else(|e| panic!("default policy: {e}"));
    let inv = inventory();
    let selected: Vec<String> = inv.regions.iter().map(|r| r.region.clone()).collect();
    let a = assess(&inv, &policy, now(), &selected);
    println!("{} items judged, {} drift", a.items.len(), a.drift.len());
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("assess_5000_keys_1000_secrets", |b| {
        b.iter(|| assess(black_box(&inv), &policy, now(), &selected))
    });
    c.final_summary();
}
