//! The approvals' part of the console's state (issue 11, 004 §6): the requests in the
//! store as the last listing found them, split for this operator, the target keys read
//! for the approval dialog, and the last outcome. Model only: `update::approvals`
//! changes it, a runtime task fills it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::approval::{Listed, Listing};
use crate::domain::inventory::KeyItem;

/// How often the approvals task lists the store by itself, besides `r`, the feed seeing
/// an approval-store event (the usual trigger: each transition is a CloudTrail event) and
/// every transition made here. Each listing costs one LookupEvents per open request, from
/// the same 2-per-second budget as the feed's pollers, so the timer is only a backstop.
pub const RELOAD_EVERY_SECS: u64 = 60;

/// The approvals view's sections, in screen order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    WaitingForMe,
    Mine,
    Open,
    History,
}

impl Section {
    pub const ALL: [Section; 4] = [Section::WaitingForMe, Section::Mine, Section::Open, Section::History];

    pub fn title(self) -> &'static str {
        match self {
            Section::WaitingForMe => "Waiting for me",
            Section::Mine => "Mine",
            Section::Open => "Open, for others",
            Section::History => "History",
        }
    }
}

impl Listing {
    pub fn section(&self, s: Section) -> &[Listed] {
        match s {
            Section::WaitingForMe => &self.waiting_for_me,
            Section::Mine => &self.mine,
            Section::Open => &self.open,
            Section::History => &self.history,
        }
    }

    /// Every row in screen order, with its section: the cursor indexes this.
    pub fn rows(&self) -> Vec<(Section, &Listed)> {
        Section::ALL.iter().flat_map(|s| self.section(*s).iter().map(move |e| (*s, e))).collect()
    }

    /// A request by id, in any section.
    pub fn find(&self, id: &str) -> Option<(Section, &Listed)> {
        self.rows().into_iter().find(|(_, e)| e.request.id == id)
    }
}

/// The target key as the approvals task read it for the dialog (ListAliases,
/// DescribeKey, GetKeyRotationStatus, ListKeyRotations), or why not.
pub type TargetRead = Result<Box<KeyItem>, String>;

/// The approvals the console shows.
#[derive(Debug, Clone, Default)]
pub struct ApprovalsState {
    /// The last listing (`None`: not loaded yet).
    pub listing: Option<Listing>,
    /// When the last listing arrived.
    pub loaded_at: Option<DateTime<Utc>>,
    /// A list is running.
    pub loading: bool,
    /// Why the last listing failed (one line, shown in the view).
    pub problem: Option<String>,
    /// Target keys read for the dialog, by key ARN (`None` in the map: being read).
    pub targets: HashMap<String, Option<TargetRead>>,
    /// The request a transition is running on.
    pub running: Option<String>,
    /// The last transition's outcome: (ok, one line).
    pub outcome: Option<(bool, String)>,
    pub cursor: usize,
    /// The request under the cursor (kept across reloads).
    pub selected_id: Option<String>,
}

impl ApprovalsState {
    /// Requests I may approve now.
    pub fn waiting_count(&self) -> usize {
        self.listing.as_ref().map_or(0, |l| l.waiting_for_me.len())
    }

    /// The row under the cursor.
    pub fn selected(&self) -> Option<(Section, &Listed)> {
        self.listing.as_ref()?.rows().get(self.cursor).copied()
    }
}

/// A prompt or dialog of the approvals: Cancel is the default of each (Esc, or Enter on
/// nothing typed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalPrompt {
    /// The approval dialog: what will happen; the key alias typed to approve.
    Approve { id: String, text: String, refusal: Option<String> },
    /// Rejecting: the reason.
    Reject { id: String, text: String },
    /// Withdrawing my request: `y` withdraws, anything else cancels.
    Withdraw { id: String },
    /// Proposing an on-demand rotation of a key from the inventory: the reason.
    Propose { key_arn: String, alias: String, region: String, text: String },
}

/// The feed's events about key `arn` (by ARN, key id, or an alias the feed's key index
/// resolves to it), newest first, at most `max`; metadata reads (`List*`, `Get*`,
/// `Describe*`, which every console's refresh makes) left out.
pub fn target_events<'a>(
    feed: &'a super::feed::FeedState,
    arn: &str,
    max: usize,
) -> Vec<&'a crate::domain::trail::TrailEvent> {
    let key_id = arn.rsplit('/').next().unwrap_or(arn);
    let names_it =
        |r: &String| r == arn || r == key_id || feed.keys.resolve(r).is_some_and(|k| k.arn == arn && !k.arn.is_empty());
    let metadata_read =
        |e: &crate::domain::trail::TrailEvent| ["List", "Get", "Describe"].iter().any(|p| e.event_name.starts_with(p));
    feed.events.iter().rev().filter(|e| !metadata_read(e) && e.key_refs.iter().any(names_it)).take(max).collect()
}

/// Requests for tests: rotate-key on the inventory fixtures' keys (`domain::inventory::fixtures`).
#[cfg(test)]
pub mod fixtures {
    use chrono::{DateTime, Duration, Utc};

    use crate::domain::approval::{Content, Listed, Listing};
    use crate::domain::approval::{NewRequest, Operation, Request};
    use crate::domain::policy::Policy;

    pub const KEY_ADMIN: &str = "arn:aws:iam::123456789012:user/key-admin";
    pub const SECURITY_LEAD: &str = "arn:aws:iam::123456789012:user/security-lead";

    /// A request on the fixture key `alias` in eu-north-1, proposed `age_mins` before `now`.
    pub fn entry(
        id: &str,
        alias: &str,
        state: &str,
        proposer: Option<&str>,
        now: DateTime<Utc>,
        age_mins: i64,
    ) -> Listed {
        let policy = Policy::default_policy().expect("policy");
        let request = Request::new(
            NewRequest {
                id: id.into(),
                operation: Operation::RotateKey,
                target_arn: format!("arn:aws:kms:eu-north-1:123456789012:key/id-{alias}"),
                parameters: Default::default(),
                reason: format!("{alias}: rotation is overdue (004 §4.2)"),
                created: now - Duration::minutes(age_mins),
            },
            &policy.approvals,
        )
        .expect("a valid request");
        Listed {
            id: id.into(),
            secret_arn: format!("arn:aws:secretsmanager:eu-north-1:123456789012:secret:keydeck/approvals/{id}-AbC123"),
            request,
            state: state.into(),
            proposer: proposer.map(str::to_owned),
            by: None,
            note: None,
            result: None,
            content: if proposer.is_some() { Content::Matches } else { Content::Unchecked },
        }
    }

    /// The security lead's listing, a row in every section: one request of the key-admin's
    /// waiting, one of the security lead's own (a matrix where they may propose), one not
    /// yet attested by CloudTrail, one executed and one rejected.
    pub fn listing(now: DateTime<Utc>) -> Listing {
        let mut executed = entry("20261123-080000-0badcafe", "drop-national-id-key", "executed", None, now, 60);
        executed.note = Some("kms:RotateKeyOnDemand started (request ids: 1f2e)".into());
        let mut rejected = entry("20261122-170000-feedf00d", "drop-backup-key", "rejected", None, now, 960);
        rejected.note = Some("wait for the change window".into());
        Listing {
            waiting_for_me: vec![entry(
                "20261123-085500-a1b2c3d4",
                "drop-kyc-key",
                "proposed",
                Some(KEY_ADMIN),
                now,
                5,
            )],
            mine: vec![entry(
                "20261123-084000-77aa88bb",
                "drop-db-master-key",
                "proposed",
                Some(SECURITY_LEAD),
                now,
                20,
            )],
            open: vec![entry("20261123-085950-deadbeef", "drop-national-id-key", "proposed", None, now, 1)],
            history: vec![executed, rejected],
            malformed: vec![],
        }
    }
}
