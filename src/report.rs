//! Non-interactive output: the inventory table and JSON, the daily review in Markdown
//! and JSON, feed lines and the alerts table. Pure text from values; `cmd` prints it.

use serde::Serialize;

use crate::domain::assessment::{kind_word, Assessment, Drift};
use crate::domain::detect::Alert;
use crate::domain::identity::CallerIdentity;
use crate::domain::review::{Change, ReviewRecord};
use crate::domain::status::Status;
use crate::domain::text::inert;
use crate::domain::trail::TrailEvent;

/// Everything `keydeck inventory --format json` prints.
#[derive(Debug, Serialize)]
pub struct InventoryReport<'a> {
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub identity: &'a CallerIdentity,
    pub regions: &'a [String],
    pub policy: &'a str,
    pub summary: Summary,
    pub items: &'a [crate::domain::assessment::AssessedItem],
    pub drift: Vec<DriftOut<'a>>,
    pub external: &'a [crate::domain::assessment::AssessedExternal],
    /// Calls that failed (which call, where, why); the rest of the inventory still loaded.
    pub problems: Vec<String>,
    /// Would `--check` fail?
    pub check_failed: bool,
}

#[derive(Debug, Serialize)]
pub struct DriftOut<'a> {
    #[serde(flatten)]
    pub drift: &'a Drift,
    pub description: String,
    pub action: &'static str,
}

#[derive(Debug, Serialize, Default)]
pub struct Summary {
    pub alert: usize,
    pub overdue: usize,
    pub unknown: usize,
    pub due_soon: usize,
    pub ok: usize,
    pub not_applicable: usize,
    pub drift: usize,
}

impl Summary {
    pub fn of(a: &Assessment) -> Self {
        Self {
            alert: a.count(Status::Alert),
            overdue: a.count(Status::Overdue),
            unknown: a.count(Status::Unknown),
            due_soon: a.count(Status::DueSoon),
            ok: a.count(Status::Ok),
            not_applicable: a.count(Status::NotApplicable),
            drift: a.drift.len(),
        }
    }
}

pub fn drift_out(a: &Assessment) -> Vec<DriftOut<'_>> {
    a.drift.iter().map(|d| DriftOut { drift: d, description: d.describe(), action: d.action() }).collect()
}

fn date(d: Option<chrono::DateTime<chrono::Utc>>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "-".into())
}

/// The plain-text table for `keydeck inventory --format table`.
pub fn table(a: &Assessment, problems: &[String]) -> String {
    let mut rows: Vec<[String; 8]> = vec![[
        "STATUS".into(),
        "KIND".into(),
        "NAME".into(),
        "REGION".into(),
        "STATE".into(),
        "LAST ROTATED".into(),
        "DUE".into(),
        "OWNER".into(),
    ]];
    for i in &a.items {
        rows.push([
            i.judgement.status.label().into(),
            kind_word(i.kind).into(),
            inert(&i.name),
            i.region.clone(),
            inert(&i.state),
            date(i.judgement.last_rotated),
            date(i.judgement.due),
            i.owner.clone().map(|o| inert(&o)).unwrap_or_else(|| "-".into()),
        ]);
    }
    for x in &a.external {
        rows.push([
            x.judgement.status.label().into(),
            "external".into(),
            inert(&x.name),
            "-".into(),
            inert(&x.kind),
            date(x.judgement.last_rotated),
            date(x.judgement.due),
            inert(&x.owner),
        ]);
    }
    let mut widths = [0usize; 8];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    if !a.drift.is_empty() {
        out.push_str("\nDrift:\n");
        for d in &a.drift {
            out.push_str(&format!("  - {}\n", inert(&d.describe())));
        }
    }
    if !problems.is_empty() {
        out.push_str("\nProblems:\n");
        for p in problems {
            out.push_str(&format!("  - {}\n", inert(p)));
        }
    }
    out
}

/// The daily review as JSON (`keydeck review --format json`): the findings (items that
/// need attention), external items due, pending deletions, drift, problems, and the
/// changes since the last saved review.
pub fn review_json(
    a: &Assessment,
    identity: &CallerIdentity,
    regions: &[String],
    policy: &str,
    problems: &[String],
    last: Option<&ReviewRecord>,
    changes: &[Change],
) -> serde_json::Value {
    let findings: Vec<_> = a.items.iter().filter(|i| i.judgement.status.needs_attention()).collect();
    let external: Vec<_> = a.external.iter().filter(|x| x.judgement.status.needs_attention()).collect();
    let pending: Vec<_> = a.items.iter().filter(|i| i.deletion_date.is_some()).collect();
    serde_json::json!({
        "generated_at": a.at,
        "reviewer": identity,
        "regions": regions,
        "policy": policy,
        "summary": Summary::of(a),
        "findings": findings,
        "external": external,
        "pending_deletion": pending,
        "drift": drift_out(a),
        "problems": problems,
        "last_review": last.map(|r| serde_json::json!({"at": r.at, "reviewer": r.reviewer})),
        "changes_since_last_review": changes,
    })
}

/// The alerts table of `keydeck alerts`: one line per alert, then the count.
pub fn alerts_table(alerts: &[Alert], events: usize) -> String {
    let mut out = String::new();
    for a in alerts {
        out.push_str(&format!(
            "{}  {:<8}  {:<44}  {:<28}  {}\n",
            a.at.format("%Y-%m-%d %H:%M:%S"),
            a.severity.as_str(),
            inert(&a.title),
            inert(a.key.as_deref().or(a.secret.as_deref()).unwrap_or("-")),
            inert(&a.principal)
        ));
    }
    out.push_str(&format!("{} alert(s) over {events} events\n", alerts.len()));
    out
}

/// One line of `keydeck feed`: time, region, call, principal, subject, outcome, source IP.
pub fn event_line(e: &TrailEvent, subject: &str) -> String {
    format!(
        "{}  {:<10}  {:<24}  {:<28}  {:<28}  {:<12}  {}",
        e.event_time.format("%Y-%m-%d %H:%M:%S"),
        e.region,
        inert(&e.event_name),
        inert(&e.principal.short_name()),
        inert(subject),
        inert(e.outcome()),
        inert(&e.source_ip)
    )
}

/// One event of `keydeck feed --format json`: the parsed event plus its `subject`.
pub fn event_json(e: &TrailEvent, subject: &str) -> Result<String, serde_json::Error> {
    let mut v = serde_json::to_value(e)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("subject".into(), serde_json::Value::String(subject.to_owned()));
    }
    serde_json::to_string(&v)
}

/// The daily review in Markdown: every item that is not OK, the rule it breaks, and
/// the action the policy prescribes.
pub fn review_markdown(
    a: &Assessment,
    identity: &CallerIdentity,
    regions: &[String],
    policy: &str,
    problems: &[String],
    changes: &[String],
) -> String {
    let at = a.at.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default();
    let s = Summary::of(a);
    let mut out = format!(
        "# Key review {at}\n\n- reviewer: `{}`\n- regions: {}\n- policy: {}\n- {} alert, {} overdue, {} unknown, {} due soon, {} OK, {} not applicable; {} drift\n",
        inert(&identity.arn),
        regions.join(", "),
        inert(policy),
        s.alert,
        s.overdue,
        s.unknown,
        s.due_soon,
        s.ok,
        s.not_applicable,
        s.drift
    );
    let findings: Vec<_> = a.items.iter().filter(|i| i.judgement.status.needs_attention()).collect();
    out.push_str("\n## Needs attention\n\n");
    if findings.is_empty() && a.external.iter().all(|x| !x.judgement.status.needs_attention()) {
        out.push_str("Nothing: every item is OK or not applicable.\n");
    } else {
        out.push_str("| status | item | region | owner | why | action |\n|---|---|---|---|---|---|\n");
        for i in &findings {
            out.push_str(&format!(
                "| {} | {} {} | {} | {} | {} | {} |\n",
                i.judgement.status.label(),
                kind_word(i.kind),
                md(&i.name),
                i.region,
                md(i.owner.as_deref().unwrap_or("-")),
                md(&i.judgement.reason),
                md(&i.judgement.action)
            ));
        }
        for x in a.external.iter().filter(|x| x.judgement.status.needs_attention()) {
            out.push_str(&format!(
                "| {} | external {} | - | {} | {} | {} |\n",
                x.judgement.status.label(),
                md(&x.name),
                md(&x.owner),
                md(&x.judgement.reason),
                md(&x.judgement.action)
            ));
        }
    }
    let pending: Vec<_> = a.items.iter().filter(|i| i.deletion_date.is_some()).collect();
    if !pending.is_empty() {
        out.push_str("\n## Pending deletion\n\n");
        for i in pending {
            out.push_str(&format!(
                "- {} {} ({}): deleted on {} — cancel it before then if this is not intended\n",
                kind_word(i.kind),
                md(&i.name),
                i.region,
                date(i.deletion_date)
            ));
        }
    }
    out.push_str("\n## Drift between the policy and AWS\n\n");
    if a.drift.is_empty() {
        out.push_str("None.\n");
    } else {
        for d in &a.drift {
            out.push_str(&format!("- {} — {}\n", md(&d.describe()), d.action()));
        }
    }
    if !changes.is_empty() {
        out.push_str("\n## Changed since the last review\n\n");
        for c in changes {
            out.push_str(&format!("- {}\n", md(c)));
        }
    }
    if !problems.is_empty() {
        out.push_str("\n## Could not be read\n\n");
        for p in problems {
            out.push_str(&format!("- {}\n", md(p)));
        }
    }
    out
}

/// Markdown-safe and terminal-safe table text.
fn md(s: &str) -> String {
    inert(s).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::assessment::assess;
    use crate::domain::inventory::fixtures::{key, secret};
    use crate::domain::inventory::{Fetched, Inventory, KeyRotation, KeyState, RegionInventory};
    use crate::domain::policy::Policy;
    use chrono::{Duration, TimeZone, Utc};

    fn now() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("date")
    }

    fn fixture() -> Assessment {
        let aged = |alias: &str, region: &str, days: i64, enabled: bool| {
            let mut k = key(region, alias, KeyState::Enabled);
            k.created = Some(now() - Duration::days(days));
            k.rotation = Fetched::Ok(KeyRotation { enabled, ..Default::default() });
            k
        };
        let mut pending = key("eu-north-1", "drop-jwt-private-key", KeyState::PendingDeletion);
        pending.spec = "RSA_2048".into();
        pending.deletion_date = Some(now() + Duration::days(18));
        let mut jwt = secret("eu-north-1", "JWT_SECRET", Some(90));
        jwt.last_rotated = Some(now() - Duration::days(95));
        let mut bankid = secret("eu-north-1", "BANKID_CLIENT_SECRET", None);
        bankid.created = Some(now() - Duration::days(250));
        let inv = Inventory {
            regions: vec![
                RegionInventory {
                    region: "eu-north-1".into(),
                    keys: vec![
                        aged("drop-db-master-key", "eu-north-1", 420, false),
                        aged("drop-kyc-key", "eu-north-1", 368, false),
                        aged("drop-national-id-key", "eu-north-1", 340, true),
                        aged("scratch|key", "eu-north-1", 40, false),
                        pending,
                    ],
                    secrets: vec![jwt, bankid],
                    problems: vec![],
                },
                RegionInventory {
                    region: "eu-west-1".into(),
                    keys: vec![aged("drop-backup-key", "eu-west-1", 100, true)],
                    secrets: vec![],
                    problems: vec![],
                },
            ],
            fetched_at: Some(now()),
        };
        let policy = Policy::default_policy().expect("policy");
        assess(&inv, &policy, now(), &["eu-north-1".to_owned(), "eu-west-1".to_owned()])
    }

    #[test]
    fn review_markdown_snapshot() {
        let id = CallerIdentity { arn: "arn:aws:iam::123456789012:user/key-auditor".into(), ..Default::default() };
        let md = review_markdown(
            &fixture(),
            &id,
            &["eu-north-1".into(), "eu-west-1".into()],
            "<embedded assets/policy.toml>",
            &["kms:ListKeys in eu-central-1 failed: access denied".into()],
            &[
                "last review 2026-11-22 09:00 UTC by arn:aws:iam::123456789012:user/key-auditor".into(),
                "drop-kyc-key: Due soon → Overdue".into(),
            ],
        );
        insta::assert_snapshot!(md);
    }

    #[test]
    fn inventory_table_snapshot() {
        insta::assert_snapshot!(table(&fixture(), &[]));
    }
}
