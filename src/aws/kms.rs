//! KMS: list keys and their metadata for the inventory.

use std::collections::BTreeMap;

use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, OriginType, RotationType};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::domain::inventory::{
    Fetched, ImportedMaterial, KeyItem, KeyManager, KeyMaterial, KeyRotation, KeyState, MultiRegionKeys, RegionalKey,
    RotationEvent, RotationKind,
};

use super::context::RegionConfig;
use super::error::{AwsError, AwsErrorKind};

/// How many DescribeKey calls run at once per region (KMS's shared quota for
/// DescribeKey is far higher; this keeps bursts polite).
pub const DESCRIBE_CONCURRENCY: usize = 8;

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Every key of one region with its aliases. A failed DescribeKey for one key leaves
/// that key's state `Unknown` with the reason; a failed ListKeys fails the region.
pub async fn list_keys(rc: &RegionConfig) -> Result<(Vec<KeyItem>, Vec<AwsError>), AwsError> {
    let client = aws_sdk_kms::Client::new(&rc.config);
    let region = rc.region.as_str();
    let mut ids: Vec<(String, String)> = Vec::new();
    let mut pages = client.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("kms:ListKeys", region, None, e))?;
        for k in page.keys() {
            if let (Some(id), Some(arn)) = (k.key_id(), k.key_arn()) {
                ids.push((id.to_owned(), arn.to_owned()));
            }
        }
    }
    let mut problems = Vec::new();
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pages = client.list_aliases().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                for a in page.aliases() {
                    if let (Some(target), Some(name)) = (a.target_key_id(), a.alias_name()) {
                        aliases
                            .entry(target.to_owned())
                            .or_default()
                            .push(name.trim_start_matches("alias/").to_owned());
                    }
                }
            }
            Err(e) => {
                problems.push(AwsError::from_sdk("kms:ListAliases", region, None, e));
                break;
            }
        }
    }
    let described: Vec<KeyItem> = stream::iter(ids)
        .map(|(id, arn)| {
            let client = client.clone();
            let mut names = aliases.get(&id).cloned().unwrap_or_default();
            names.sort();
            async move { read_key_with(&client, region, id, arn, names).await }
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    Ok((described, problems))
}

/// Re-read one key (after an action touched it, or when the feed says it changed):
/// ListAliases for that key, then the same per-key calls as a full refresh.
pub async fn read_key(rc: &RegionConfig, key_id: &str) -> Result<KeyItem, AwsError> {
    let client = aws_sdk_kms::Client::new(&rc.config);
    let region = rc.region.as_str();
    let out = client
        .list_aliases()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("kms:ListAliases", region, Some(key_id), e))?;
    let mut names: Vec<String> = out
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name())
        .map(|n| n.trim_start_matches("alias/").to_owned())
        .collect();
    names.sort();
    let item = read_key_with(&client, region, key_id.to_owned(), String::new(), names).await;
    if item.state == KeyState::Unknown && item.problem.as_deref().is_some_and(|p| p.contains("not found")) {
        return Err(AwsError {
            call: "kms:DescribeKey",
            region: region.to_owned(),
            resource: Some(key_id.to_owned()),
            kind: super::error::AwsErrorKind::NotFound,
            code: None,
            message: item.problem.unwrap_or_default(),
        });
    }
    Ok(item)
}

/// DescribeKey, then (where they apply) GetKeyRotationStatus + ListKeyRotations and
/// ListResourceTags concurrently: at most four calls per key. A symmetric key with
/// imported material cannot rotate automatically, so it gets one ListKeyRotations with
/// IncludeKeyMaterial ALL_KEY_MATERIAL instead (its on-demand rotations and every key
/// material with its ImportState and ValidTo). A denied call marks only its own cell.
async fn read_key_with(
    client: &aws_sdk_kms::Client,
    region: &str,
    id: String,
    arn: String,
    names: Vec<String>,
) -> KeyItem {
    let mut item = match client.describe_key().key_id(&id).send().await {
        Ok(out) => match out.key_metadata() {
            Some(m) => from_metadata(region, m, names),
            None => unknown(region, id, arn, names, "DescribeKey returned no metadata".into()),
        },
        Err(e) => {
            let err = AwsError::from_sdk("kms:DescribeKey", region, Some(&id), e);
            let why = match err.kind {
                AwsErrorKind::AccessDenied => "DescribeKey denied".to_owned(),
                AwsErrorKind::NotFound => format!("not found: {}", err.message),
                _ => err.to_string(),
            };
            let mut item = unknown(region, id, arn, names, why);
            if err.kind == AwsErrorKind::AccessDenied {
                item.rotation = Fetched::Denied;
                item.tags = Fetched::Denied;
            }
            return item;
        }
    };
    if item.manager == KeyManager::Aws {
        // AWS rotates AWS-managed keys every year; nothing to judge or tag.
        item.rotation = Fetched::NotApplicable;
        item.tags = Fetched::NotApplicable;
        return item;
    }
    let rotation_applies = crate::domain::status::rotation_applies(&item);
    let key_id = item.key_id.clone();
    let on_demand_only = crate::domain::status::on_demand_rotation_only(&item);
    let rotation = async {
        if on_demand_only {
            return match list_rotations(client, region, &key_id, true).await {
                Ok((history, materials)) => (Fetched::Ok(KeyRotation { history, ..Default::default() }), materials),
                Err(e) => (fetched_error(e), Vec::new()),
            };
        }
        if !rotation_applies {
            return (Fetched::NotApplicable, Vec::new());
        }
        let (status, history) = tokio::join!(
            client.get_key_rotation_status().key_id(&key_id).send(),
            list_rotations(client, region, &key_id, false)
        );
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                return (
                    fetched_error(AwsError::from_sdk("kms:GetKeyRotationStatus", region, Some(&key_id), e)),
                    Vec::new(),
                )
            }
        };
        let history = match history {
            Ok((h, _)) => h,
            Err(e) => return (fetched_error(e), Vec::new()),
        };
        let rotation = Fetched::Ok(KeyRotation {
            enabled: status.key_rotation_enabled(),
            period_days: status.rotation_period_in_days().map(i64::from),
            next: status.next_rotation_date().and_then(to_chrono),
            on_demand_started: status.on_demand_rotation_start_date().and_then(to_chrono),
            history,
        });
        (rotation, Vec::new())
    };
    let tags = async {
        let mut out = BTreeMap::new();
        let mut pages = client.list_resource_tags().key_id(&key_id).into_paginator().send();
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => {
                    for t in p.tags() {
                        out.insert(t.tag_key().to_owned(), t.tag_value().to_owned());
                    }
                }
                Err(e) => return fetched_error(AwsError::from_sdk("kms:ListResourceTags", region, Some(&key_id), e)),
            }
        }
        Fetched::Ok(out)
    };
    let ((rotation, materials), tags) = tokio::join!(rotation, tags);
    item.rotation = rotation;
    if let Some(imported) = item.imported.as_mut() {
        imported.materials = materials;
    }
    item.tags = tags;
    item
}

/// ListKeyRotations: completed rotations, oldest first; with `all_material`
/// (IncludeKeyMaterial ALL_KEY_MATERIAL, keys with imported material) also every key
/// material, the first one and any pending rotation included.
async fn list_rotations(
    client: &aws_sdk_kms::Client,
    region: &str,
    key_id: &str,
    all_material: bool,
) -> Result<(Vec<RotationEvent>, Vec<KeyMaterial>), AwsError> {
    use aws_sdk_kms::types::{ImportState, IncludeKeyMaterial, KeyMaterialState};
    let mut history = Vec::new();
    let mut materials = Vec::new();
    let mut request = client.list_key_rotations().key_id(key_id);
    if all_material {
        request = request.include_key_material(IncludeKeyMaterial::AllKeyMaterial);
    }
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("kms:ListKeyRotations", region, Some(key_id), e))?;
        for r in page.rotations() {
            if let Some(at) = r.rotation_date().and_then(to_chrono) {
                let kind = match r.rotation_type() {
                    Some(RotationType::OnDemand) => RotationKind::OnDemand,
                    _ => RotationKind::Automatic,
                };
                history.push(RotationEvent { at, kind });
            }
            if all_material {
                materials.push(KeyMaterial {
                    imported: r.import_state() != Some(&ImportState::PendingImport),
                    current: r.key_material_state() == Some(&KeyMaterialState::Current),
                    valid_to: r.valid_to().and_then(to_chrono),
                });
            }
        }
    }
    history.sort_by_key(|r| r.at);
    Ok((history, materials))
}

fn fetched_error<T>(e: AwsError) -> Fetched<T> {
    match e.kind {
        AwsErrorKind::AccessDenied => Fetched::Denied,
        AwsErrorKind::Throttled => Fetched::Throttled,
        _ => Fetched::Failed(e.to_string()),
    }
}

/// The key policy document (`default`), for the detail pane; read on demand.
pub async fn key_policy(rc: &RegionConfig, key_id: &str) -> Result<String, AwsError> {
    let client = aws_sdk_kms::Client::new(&rc.config);
    let out = client
        .get_key_policy()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("kms:GetKeyPolicy", &rc.region, Some(key_id), e))?;
    Ok(out.policy().unwrap_or_default().to_owned())
}

fn from_metadata(region: &str, m: &KeyMetadata, aliases: Vec<String>) -> KeyItem {
    KeyItem {
        region: region.to_owned(),
        key_id: m.key_id().to_owned(),
        arn: m.arn().unwrap_or_default().to_owned(),
        aliases,
        description: m.description().unwrap_or_default().to_owned(),
        state: m.key_state().map(|s| KeyState::parse(s.as_str())).unwrap_or(KeyState::Unknown),
        manager: match m.key_manager() {
            Some(KeyManagerType::Aws) => KeyManager::Aws,
            _ => KeyManager::Customer,
        },
        spec: m.key_spec().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        usage: m.key_usage().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        origin: m.origin().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        created: m.creation_date().and_then(to_chrono),
        deletion_date: m.deletion_date().and_then(to_chrono),
        multi_region: m
            .multi_region_configuration()
            .and_then(|c| c.multi_region_key_type())
            .map(|t| t.as_str().to_owned()),
        problem: None,
        custom_key_store: m.custom_key_store_id().map(str::to_owned),
        rotation: Fetched::NotFetched,
        tags: Fetched::NotFetched,
        key_policy: Fetched::NotFetched,
        imported: (m.origin() == Some(&OriginType::External)).then(|| ImportedMaterial {
            expiration_model: m.expiration_model().map(|e| e.as_str().to_owned()),
            valid_to: m.valid_to().and_then(to_chrono),
            materials: Vec::new(),
        }),
        multi_region_keys: m.multi_region_configuration().map(|c| {
            let regional = |k: &aws_sdk_kms::types::MultiRegionKey| {
                Some(RegionalKey { arn: k.arn()?.to_owned(), region: k.region()?.to_owned() })
            };
            MultiRegionKeys {
                key_type: c.multi_region_key_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                primary: c.primary_key().and_then(regional),
                replica_regions: c.replica_keys().iter().filter_map(|k| k.region().map(str::to_owned)).collect(),
            }
        }),
    }
}

fn unknown(region: &str, id: String, arn: String, aliases: Vec<String>, why: String) -> KeyItem {
    // AWS-managed keys carry aliases under aws/; without DescribeKey that is the best hint.
    let manager = if aliases.iter().any(|a| a.starts_with("aws/")) { KeyManager::Aws } else { KeyManager::Customer };
    KeyItem {
        region: region.to_owned(),
        key_id: id,
        arn,
        aliases,
        description: String::new(),
        state: KeyState::Unknown,
        manager,
        spec: String::new(),
        usage: String::new(),
        origin: String::new(),
        created: None,
        deletion_date: None,
        multi_region: None,
        problem: Some(why),
        custom_key_store: None,
        rotation: Fetched::NotFetched,
        tags: Fetched::NotFetched,
        key_policy: Fetched::NotFetched,
        imported: None,
        multi_region_keys: None,
    }
}

/// Every alias of one region as (key id, alias names): the light index the `feed`
/// command uses to name keys (one ListAliases call per 100 aliases).
pub async fn aliases(rc: &RegionConfig) -> Result<Vec<(String, Vec<String>)>, AwsError> {
    let client = aws_sdk_kms::Client::new(&rc.config);
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pages = client.list_aliases().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("kms:ListAliases", &rc.region, None, e))?;
        for a in page.aliases() {
            if let (Some(target), Some(name)) = (a.target_key_id(), a.alias_name()) {
                by_key.entry(target.to_owned()).or_default().push(name.trim_start_matches("alias/").to_owned());
            }
        }
    }
    Ok(by_key.into_iter().collect())
}
