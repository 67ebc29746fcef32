//! Secrets Manager: list secrets' metadata. Secret values are never requested.

use crate::domain::inventory::SecretItem;

use super::context::RegionConfig;
use super::error::AwsError;
use super::kms::to_chrono;

/// Secrets Manager's list entry and DescribeSecret output carry the same metadata under
/// the same accessor names: one mapping for both.
macro_rules! secret_item {
    ($s:expr, $region:expr) => {
        SecretItem {
            region: $region.to_owned(),
            name: $s.name().unwrap_or_default().to_owned(),
            arn: $s.arn().unwrap_or_default().to_owned(),
            description: $s.description().unwrap_or_default().to_owned(),
            rotation_enabled: $s.rotation_enabled().unwrap_or(false),
            rotation_days: $s.rotation_rules().and_then(|r| r.automatically_after_days()),
            last_rotated: $s.last_rotated_date().and_then(to_chrono),
            last_accessed: $s.last_accessed_date().and_then(to_chrono),
            next_rotation: $s.next_rotation_date().and_then(to_chrono),
            created: $s.created_date().and_then(to_chrono),
            deleted: $s.deleted_date().and_then(to_chrono),
            kms_key: $s.kms_key_id().map(str::to_owned),
            tags: $s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
                .collect(),
        }
    };
}

/// Every secret of one region (ListSecrets carries all the metadata the inventory needs).
pub async fn list_secrets(rc: &RegionConfig) -> Result<Vec<SecretItem>, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(&rc.config);
    let region = rc.region.as_str();
    let mut out = Vec::new();
    let mut pages = client.list_secrets().include_planned_deletion(true).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::from_sdk("secretsmanager:ListSecrets", region, None, e))?;
        for s in page.secret_list() {
            out.push(secret_item!(s, region));
        }
    }
    Ok(out)
}

/// Re-read one secret's metadata (DescribeSecret) after the feed saw it change.
pub async fn read_secret(rc: &RegionConfig, secret_id: &str) -> Result<SecretItem, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(&rc.config);
    let region = rc.region.as_str();
    let s = client
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("secretsmanager:DescribeSecret", region, Some(secret_id), e))?;
    Ok(secret_item!(s, region))
}
