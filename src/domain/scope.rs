//! The scope of a key compromise read from CloudTrail (004 §4.7 step 2 "Identify all
//! data encrypted with compromised key", §10 "Assess scope"): who used the key in the
//! window, grouped by principal and operation, and how each caller names the key. A
//! caller that names it by alias follows an alias move to the replacement; one that names
//! it by key id or key ARN needs a configuration change; a Decrypt without a KeyId takes
//! the key from the ciphertext (its data needs re-encryption).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::trail::TrailEvent;

/// How a call named the key (`requestParameters.keyId`, KMS API "KeyId").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedBy {
    /// `alias/NAME` or an alias ARN: follows UpdateAlias.
    Alias,
    /// The bare key id: needs a configuration change.
    KeyId,
    /// The key ARN: needs a configuration change.
    KeyArn,
    /// No KeyId (Decrypt, ReEncrypt's source): the key came from the ciphertext.
    Ciphertext,
}

impl NamedBy {
    /// Read from a record's `requestParameters.keyId` (or `sourceKeyId`).
    fn of(raw: &str) -> NamedBy {
        let v: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
        let p = v.get("requestParameters");
        let key = p.and_then(|p| p.get("keyId").or_else(|| p.get("sourceKeyId"))).and_then(Value::as_str);
        match key {
            None | Some("") => NamedBy::Ciphertext,
            Some(k) if k.starts_with("alias/") || k.contains(":alias/") => NamedBy::Alias,
            Some(k) if k.starts_with("arn:") => NamedBy::KeyArn,
            Some(_) => NamedBy::KeyId,
        }
    }

    /// Whether a caller naming the key this way needs a configuration change when the
    /// key is replaced.
    pub fn needs_config_change(self) -> bool {
        matches!(self, NamedBy::KeyId | NamedBy::KeyArn)
    }
}

/// One principal's use of the key with one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The principal's ARN (its name when CloudTrail gives no ARN).
    pub principal: String,
    /// The API action (`Decrypt`, `GenerateDataKey`, ...).
    pub operation: String,
    pub calls: usize,
    /// Calls that failed (AccessDenied, DisabledException, ...).
    pub failed: usize,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub named_by: BTreeSet<NamedBy>,
}

/// The scope report: every caller, busiest first, and who needs a configuration change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Scope {
    pub events: usize,
    pub callers: Vec<Caller>,
    /// Principals that named the key by id or ARN (sorted).
    pub needs_config_change: Vec<String>,
    /// Principals that used or changed the key (sorted).
    pub principals: Vec<String>,
    /// Describe*/List*/Get* calls (consoles, auditors, keydeck itself): counted, not callers.
    #[serde(default)]
    pub metadata_reads: usize,
}

/// A read of the key's metadata, not a use of the key (GetPublicKey is a use).
fn is_metadata_read(event_name: &str) -> bool {
    (event_name.starts_with("Describe") || event_name.starts_with("List") || event_name.starts_with("Get"))
        && event_name != "GetPublicKey"
}

/// Group `events` (any order, duplicates by EventId counted once) by principal and
/// operation.
pub fn scope(events: &[TrailEvent]) -> Scope {
    let mut seen = BTreeSet::new();
    let mut metadata_reads = 0;
    let mut by: BTreeMap<(String, String), Caller> = BTreeMap::new();
    for e in events {
        if !seen.insert(e.event_id.as_str()) {
            continue;
        }
        if is_metadata_read(&e.event_name) {
            metadata_reads += 1;
            continue;
        }
        let who = if e.principal.arn.is_empty() { e.principal.name.clone() } else { e.principal.arn.clone() };
        let named = NamedBy::of(&e.raw);
        let c = by.entry((who.clone(), e.event_name.clone())).or_insert_with(|| Caller {
            principal: who,
            operation: e.event_name.clone(),
            calls: 0,
            failed: 0,
            first: e.event_time,
            last: e.event_time,
            named_by: BTreeSet::new(),
        });
        c.calls += 1;
        c.failed += usize::from(e.error_code.is_some());
        c.first = c.first.min(e.event_time);
        c.last = c.last.max(e.event_time);
        c.named_by.insert(named);
    }
    let mut callers: Vec<Caller> = by.into_values().collect();
    callers.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.principal.cmp(&b.principal)));
    let needs: BTreeSet<String> = callers
        .iter()
        .filter(|c| c.named_by.iter().any(|n| n.needs_config_change()))
        .map(|c| c.principal.clone())
        .collect();
    let principals: BTreeSet<String> = callers.iter().map(|c| c.principal.clone()).collect();
    Scope {
        events: seen.len(),
        callers,
        needs_config_change: needs.into_iter().collect(),
        principals: principals.into_iter().collect(),
        metadata_reads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::trail::parse_event;

    fn rec(id: &str, t: &str, name: &str, user: &str, key_id: Option<&str>, error: Option<&str>) -> TrailEvent {
        let mut params = serde_json::Map::new();
        if let Some(k) = key_id {
            params.insert("keyId".into(), k.into());
        }
        let raw = serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::123456789012:user/{user}"), "userName": user, "accountId": "123456789012"},
            "eventTime": t,
            "eventSource": "kms.amazonaws.com",
            "eventName": name,
            "awsRegion": "eu-north-1",
            "sourceIPAddress": "10.0.0.1",
            "requestParameters": params,
            "errorCode": error,
            "eventID": id,
        });
        parse_event(&raw.to_string()).expect("record")
    }

    #[test]
    fn callers_grouped_with_how_they_name_the_key() {
        let arn = "arn:aws:kms:eu-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let events = vec![
            rec("1", "2026-11-20T10:00:00Z", "GenerateDataKey", "app-encrypt", Some("alias/drop-kyc-key"), None),
            rec("2", "2026-11-21T10:00:00Z", "GenerateDataKey", "app-encrypt", Some("alias/drop-kyc-key"), None),
            rec("3", "2026-11-21T11:00:00Z", "Decrypt", "app-runner", None, None),
            rec("4", "2026-11-22T11:00:00Z", "Encrypt", "batch", Some(arn), None),
            rec("5", "2026-11-22T12:00:00Z", "Decrypt", "outsider", None, Some("AccessDenied")),
            rec("2", "2026-11-21T10:00:00Z", "GenerateDataKey", "app-encrypt", Some("alias/drop-kyc-key"), None),
            rec("6", "2026-11-22T12:00:00Z", "DescribeKey", "key-auditor", Some("alias/drop-kyc-key"), None),
        ];
        let s = scope(&events);
        assert_eq!(s.events, 6, "duplicates counted once");
        assert_eq!(s.metadata_reads, 1, "a DescribeKey is no use of the key");
        let first = &s.callers[0];
        assert_eq!((first.operation.as_str(), first.calls), ("GenerateDataKey", 2));
        assert!(first.principal.ends_with("user/app-encrypt"));
        assert_eq!(first.named_by.iter().copied().collect::<Vec<_>>(), vec![NamedBy::Alias]);
        assert_eq!(s.needs_config_change, vec!["arn:aws:iam::123456789012:user/batch".to_owned()]);
        let denied = s.callers.iter().find(|c| c.principal.ends_with("outsider")).expect("outsider");
        assert_eq!((denied.failed, denied.named_by.iter().next().copied()), (1, Some(NamedBy::Ciphertext)));
        assert_eq!(s.principals.len(), 4);
    }

    #[test]
    fn key_ids_and_alias_arns() {
        let e = rec("1", "2026-11-20T10:00:00Z", "Encrypt", "a", Some("1234abcd-12ab-34cd-56ef-1234567890ab"), None);
        let a = rec("2", "2026-11-20T10:00:00Z", "Encrypt", "b", Some("arn:aws:kms:eu-north-1:1:alias/x"), None);
        let s = scope(&[e, a]);
        let named: Vec<(String, Vec<NamedBy>)> = s
            .callers
            .iter()
            .map(|c| (c.principal.rsplit('/').next().unwrap_or("").to_owned(), c.named_by.iter().copied().collect()))
            .collect();
        assert!(named.contains(&("a".into(), vec![NamedBy::KeyId])));
        assert!(named.contains(&("b".into(), vec![NamedBy::Alias])));
    }
}
