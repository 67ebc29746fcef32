//! Secrets Manager: list secrets' metadata. Secret values are never requested.

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::domain::inventory::{Fetched, SecretItem};

use super::context::RegionConfig;
use super::error::{AwsError, AwsErrorKind};
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
            // A schedule set by ScheduleExpression may come back with no (or a zero)
            // AutomaticallyAfterDays: then the expression decides.
            rotation_days: $s.rotation_rules().and_then(|r| r.automatically_after_days()).filter(|d| *d > 0),
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
            last_changed: $s.last_changed_date().and_then(to_chrono),
            rotation_schedule: $s.rotation_rules().and_then(|r| r.schedule_expression()).map(str::to_owned),
            current_version_created: crate::domain::inventory::Fetched::NotFetched,
            primary_region: $s.primary_region().map(str::to_owned),
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
    // A value replaced by hand is a change: read the AWSCURRENT version's date, but only
    // where LastChangedDate says something changed after the last rotation.
    let dated: Vec<SecretItem> = stream::iter(out)
        .map(|mut s| {
            let client = client.clone();
            async move {
                if s.needs_current_version() {
                    s.current_version_created = current_version_created(&client, region, &s.arn).await;
                }
                s
            }
        })
        .buffer_unordered(super::kms::DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    Ok(dated)
}

/// When the version staged AWSCURRENT was created (ListSecretVersionIds; no value read).
async fn current_version_created(
    client: &aws_sdk_secretsmanager::Client,
    region: &str,
    secret_id: &str,
) -> Fetched<DateTime<Utc>> {
    let mut pages = client.list_secret_version_ids().secret_id(secret_id).into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => {
                for v in p.versions() {
                    if v.version_stages().iter().any(|s| s == "AWSCURRENT") {
                        return v.created_date().and_then(to_chrono).map(Fetched::Ok).unwrap_or(Fetched::NotFetched);
                    }
                }
            }
            Err(e) => {
                let e = AwsError::from_sdk("secretsmanager:ListSecretVersionIds", region, Some(secret_id), e);
                return match e.kind {
                    AwsErrorKind::AccessDenied => Fetched::Denied,
                    AwsErrorKind::Throttled => Fetched::Throttled,
                    _ => Fetched::Failed(e.to_string()),
                };
            }
        }
    }
    Fetched::NotFetched
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
    let mut item = secret_item!(s, region);
    if item.needs_current_version() {
        item.current_version_created = current_version_created(&client, region, &item.arn).await;
    }
    Ok(item)
}
