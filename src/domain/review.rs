//! The daily review: what a reviewer saw and marked, and what changed since.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::assessment::{kind_word, Assessment};
use super::inventory::ItemKind;
use super::status::Status;

/// A dual-approval request still open (proposed, not expired) when the review ran (issue
/// 11: "the review lists open requests"), so a rotation already proposed is not proposed
/// twice and an approver sees what waits for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenRequest {
    pub id: String,
    /// As named in the policy's matrix: `rotate-key`, `schedule-deletion`, ...
    pub operation: String,
    /// The key's name in the assessment (its alias) when the review sees it, else its ARN.
    pub target: String,
    pub target_arn: String,
    /// As CloudTrail attests it (`None`: not delivered yet).
    pub proposer: Option<String>,
    pub reason: String,
    pub expires: DateTime<Utc>,
    /// The reviewer may approve it (holds the approver role, did not propose it).
    pub for_reviewer: bool,
}

impl OpenRequest {
    /// `target` from the assessment: the item whose ARN is `target_arn`, by name.
    pub fn target_name(a: &Assessment, target_arn: &str) -> String {
        a.items.iter().find(|i| i.id == target_arn).map(|i| i.name.clone()).unwrap_or_else(|| target_arn.to_owned())
    }
}

/// One item as it stood when reviewed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewedItem {
    pub id: String,
    pub kind: ItemKind,
    pub name: String,
    pub region: String,
    pub status: Status,
    /// The reviewer marked it reviewed, with this note.
    pub note: Option<String>,
}

/// A saved review (the body of a `review` journal entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub reviewer: String,
    pub at: DateTime<Utc>,
    pub account: String,
    pub regions: Vec<String>,
    pub items: Vec<ReviewedItem>,
}

impl ReviewRecord {
    /// Snapshot the assessment with the reviewer's marks (item id → note).
    pub fn from_assessment(
        a: &Assessment,
        marks: &BTreeMap<String, String>,
        reviewer: &str,
        account: &str,
        regions: &[String],
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            reviewer: reviewer.to_owned(),
            at,
            account: account.to_owned(),
            regions: regions.to_vec(),
            items: a
                .items
                .iter()
                .filter(|i| !i.aws_managed)
                .map(|i| ReviewedItem {
                    id: i.id.clone(),
                    kind: i.kind,
                    name: i.name.clone(),
                    region: i.region.clone(),
                    status: i.judgement.status,
                    note: marks.get(&i.id).cloned(),
                })
                .collect(),
        }
    }
}

/// What changed for one item since the last review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    New { id: String, name: String, status: Status },
    Gone { id: String, name: String },
    Status { id: String, name: String, from: Status, to: Status },
}

impl Change {
    pub fn id(&self) -> &str {
        match self {
            Change::New { id, .. } | Change::Gone { id, .. } | Change::Status { id, .. } => id,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Change::New { name, status, .. } => format!("{name}: new since the last review ({})", status.label()),
            Change::Gone { name, .. } => format!("{name}: gone since the last review"),
            Change::Status { name, from, to, .. } => format!("{name}: {} → {}", from.label(), to.label()),
        }
    }
}

/// Compare the current assessment with the last saved review.
pub fn changes_since(prev: &ReviewRecord, now: &Assessment) -> Vec<Change> {
    let before: BTreeMap<&str, &ReviewedItem> = prev.items.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut out = Vec::new();
    for i in now.items.iter().filter(|i| !i.aws_managed) {
        match before.get(i.id.as_str()) {
            None => out.push(Change::New { id: i.id.clone(), name: i.name.clone(), status: i.judgement.status }),
            Some(b) if b.status != i.judgement.status => out.push(Change::Status {
                id: i.id.clone(),
                name: i.name.clone(),
                from: b.status,
                to: i.judgement.status,
            }),
            Some(_) => {}
        }
    }
    for b in &prev.items {
        if now.item(&b.id).is_none() {
            out.push(Change::Gone { id: b.id.clone(), name: format!("{} {}", kind_word(b.kind), b.name) });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::assessment::AssessedItem;
    use crate::domain::status::Judgement;
    use chrono::TimeZone;

    fn item(id: &str, status: Status) -> AssessedItem {
        AssessedItem {
            kind: ItemKind::Key,
            id: id.into(),
            name: id.into(),
            aliases: vec![],
            region: "eu-north-1".into(),
            state: "Enabled".into(),
            owner: None,
            classification: None,
            managed: true,
            aws_managed: false,
            deletion_date: None,
            tags: Default::default(),
            judgement: Judgement {
                status,
                reason: String::new(),
                action: String::new(),
                due: None,
                last_rotated: None,
            },
            check_failure: None,
            replicas: vec![],
            replica_of: None,
            replaced_by: None,
            replaces: None,
            incident: None,
            listed_at: None,
        }
    }

    #[test]
    fn changes_are_new_gone_and_status() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).single().expect("date");
        let then = Assessment {
            at: Some(at),
            items: vec![item("a", Status::Ok), item("b", Status::DueSoon)],
            ..Default::default()
        };
        let marks: BTreeMap<String, String> = [("b".to_owned(), "ticket SEC-1".to_owned())].into();
        let rec = ReviewRecord::from_assessment(&then, &marks, "arn:r", "123", &["eu-north-1".into()], at);
        assert_eq!(rec.items[1].note.as_deref(), Some("ticket SEC-1"));
        let now = Assessment {
            at: Some(at),
            items: vec![item("b", Status::Overdue), item("c", Status::Ok)],
            ..Default::default()
        };
        let ch = changes_since(&rec, &now);
        let text: Vec<String> = ch.iter().map(Change::describe).collect();
        assert_eq!(
            text,
            vec!["b: Due soon → Overdue", "c: new since the last review (OK)", "key a: gone since the last review"]
        );
    }
}
