//! KMS: list keys and their metadata for the inventory.

use std::collections::BTreeMap;

use aws_sdk_kms::types::{KeyManagerType, KeyMetadata};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::domain::inventory::{KeyItem, KeyManager, KeyState};

use super::{AwsError, RegionConfig};

/// How many DescribeKey calls run at once per region (KMS's shared quota for
/// DescribeKey is far higher; this keeps bursts polite).
pub const DESCRIBE_CONCURRENCY: usize = 8;

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Every key of one region with its aliases. A failed DescribeKey for one key leaves
/// that key's state `Unknown` with the reason; a failed ListKeys fails the region.
pub async fn list_keys(rc: &RegionConfig) -> Result<(Vec<KeyItem>, Vec<String>), AwsError> {
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
                problems.push(AwsError::from_sdk("kms:ListAliases", region, None, e).to_string());
                break;
            }
        }
    }
    let described: Vec<KeyItem> = stream::iter(ids)
        .map(|(id, arn)| {
            let client = client.clone();
            let mut names = aliases.get(&id).cloned().unwrap_or_default();
            names.sort();
            async move {
                match client.describe_key().key_id(&id).send().await {
                    Ok(out) => match out.key_metadata() {
                        Some(m) => from_metadata(region, m, names),
                        None => unknown(region, id, arn, names, "DescribeKey returned no metadata".into()),
                    },
                    Err(e) => {
                        let err = AwsError::from_sdk("kms:DescribeKey", region, Some(&id), e);
                        let why = match err.kind {
                            super::AwsErrorKind::AccessDenied => "DescribeKey denied".to_owned(),
                            _ => err.to_string(),
                        };
                        unknown(region, id, arn, names, why)
                    }
                }
            }
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    Ok((described, problems))
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
    }
}
