//! Non-interactive output: the inventory table and JSON, the daily review in Markdown
//! and JSON, feed lines and the alerts table. Pure text from values; `cmd` prints it.

use serde::Serialize;

use crate::domain::assessment::{kind_word, Assessment, Drift};
use crate::domain::detect::Alert;
use crate::domain::identity::CallerIdentity;
use crate::domain::review::{Change, OpenRequest, ReviewRecord};
use crate::domain::runbook::{CallResult, IncidentRecord, Plan, StepRecord, StepState, Work};
use crate::domain::status::Status;
use crate::domain::text::{hms, inert};
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
    /// Why it would fail: one entry per item, rule, region or service (empty when it passes).
    pub check_failures: Vec<crate::domain::assessment::CheckFailure>,
    /// Regions and services that could not be listed, with what to do about it.
    pub unlisted: Vec<UnlistedOut<'a>>,
}

#[derive(Debug, Serialize)]
pub struct UnlistedOut<'a> {
    #[serde(flatten)]
    pub unlisted: &'a crate::domain::inventory::ListingFailure,
    pub action: String,
}

pub fn unlisted_out(a: &Assessment) -> Vec<UnlistedOut<'_>> {
    a.unlisted.iter().map(|u| UnlistedOut { unlisted: u, action: u.action() }).collect()
}

#[derive(Debug, Serialize)]
pub struct DriftOut<'a> {
    #[serde(flatten)]
    pub drift: &'a Drift,
    pub description: String,
    pub action: String,
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

/// What a daily review reports, whatever its format.
#[derive(Clone, Copy)]
pub struct Review<'a> {
    pub assessment: &'a Assessment,
    /// The reviewer (STS GetCallerIdentity).
    pub identity: &'a CallerIdentity,
    pub regions: &'a [String],
    /// The policy file's name, as shown.
    pub policy: &'a str,
    /// What could not be read, one line each.
    pub problems: &'a [String],
    pub requests: &'a [OpenRequest],
}

/// The daily review as JSON (`keydeck review --format json`): the findings (items that
/// need attention), external items due, pending deletions, drift, problems, and the
/// changes since the last saved review.
pub fn review_json(r: &Review<'_>, last: Option<&ReviewRecord>, changes: &[Change]) -> serde_json::Value {
    let Review { assessment: a, identity, regions, policy, problems, requests } = *r;
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
        "open_approval_requests": requests,
    })
}

/// Why `inventory --check` fails, after the table: one line per item (the JSON's
/// `check_failures`) and per Region or service that could not be listed.
pub fn check_failures(a: &Assessment) -> String {
    let failures = a.check_failures();
    let mut out = format!("\n--check failed ({} finding(s)):\n", failures.len());
    for f in failures {
        out.push_str(&format!("  {}: {}\n", inert(&f.subject), inert(&f.reason)));
    }
    out
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

/// One line of `keydeck feed`: time, region, call (an approval-store record: its label, see
/// `domain::approval_event`), principal, subject, outcome, source IP.
pub fn event_line(e: &TrailEvent, subject: &str) -> String {
    format!(
        "{}  {:<10}  {:<24}  {:<28}  {:<28}  {:<12}  {}",
        e.event_time.format("%Y-%m-%d %H:%M:%S"),
        e.region,
        inert(&crate::domain::approval_event::event_label(e)),
        inert(&e.principal.short_name()),
        inert(subject),
        inert(e.outcome()),
        inert(&e.source_ip)
    )
}

/// One event of `keydeck feed --format json`: the parsed event plus its `subject` (and its
/// `label`, for an approval-store record).
pub fn event_json(e: &TrailEvent, subject: &str) -> Result<String, serde_json::Error> {
    let mut v = serde_json::to_value(e)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("subject".into(), serde_json::Value::String(subject.to_owned()));
        if let Some(label) = crate::domain::approval_event::label(e) {
            o.insert("label".into(), serde_json::Value::String(label));
        }
    }
    serde_json::to_string(&v)
}

/// The daily review in Markdown: every item that is not OK, the rule it breaks, and
/// the action the policy prescribes.
pub fn review_markdown(r: &Review<'_>, changes: &[String]) -> String {
    let Review { assessment: a, identity, regions, policy, problems, requests } = *r;
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
    if !requests.is_empty() {
        out.push_str("\n## Open approval requests\n\n| request | operation | key | proposer | expires | reason |\n|---|---|---|---|---|---|\n");
        for r in requests {
            out.push_str(&format!(
                "| {}{} | {} | {} | {} | {} | {} |\n",
                md(&r.id),
                if r.for_reviewer { " (waiting for you)" } else { "" },
                md(&r.operation),
                md(&r.target),
                md(r.proposer.as_deref().unwrap_or("not yet attested")),
                r.expires.format("%Y-%m-%d %H:%M UTC"),
                md(&r.reason)
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
                    unlisted: vec![],
                },
                RegionInventory {
                    region: "eu-west-1".into(),
                    keys: vec![aged("drop-backup-key", "eu-west-1", 100, true)],
                    secrets: vec![],
                    problems: vec![],
                    unlisted: vec![],
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
        let a = fixture();
        let requests = [OpenRequest {
            id: "20261123-081500-ab12cd34".into(),
            operation: "rotate-key".into(),
            target: "drop-kyc-key".into(),
            target_arn: "arn:aws:kms:eu-north-1:123456789012:key/k".into(),
            proposer: Some("arn:aws:iam::123456789012:user/key-admin".into()),
            reason: "12 days | overdue".into(),
            expires: now() + Duration::hours(23),
            for_reviewer: true,
        }];
        let review = Review {
            assessment: &a,
            identity: &id,
            regions: &["eu-north-1".into(), "eu-west-1".into()],
            policy: "<embedded assets/policy.toml>",
            problems: &["kms:ListKeys in eu-central-1 failed: access denied".into()],
            requests: &requests,
        };
        let md = review_markdown(
            &review,
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

// ---- incidents --------------------------------------------------------------------

/// A step state in a word or two (`done`, `skipped: REASON`, `FAILED: …`, `unknown`).
pub fn step_state_text(s: &StepState) -> String {
    match s {
        StepState::Pending => "pending".into(),
        StepState::Blocked { by } => format!("blocked by {}", by.join(", ")),
        StepState::WaitingForApproval { .. } | StepState::ApprovalEnded { .. } => s.approval_text().unwrap_or_default(),
        StepState::Unknown { attempt } => format!("OUTCOME UNKNOWN (attempt {attempt}): run it to settle"),
        StepState::Done { at } => format!("done {}", at.format("%H:%M:%S")),
        StepState::Failed { attempt, error, retryable } => {
            format!("FAILED (attempt {attempt}{}): {}", if *retryable { ", retryable" } else { "" }, inert(error))
        }
        StepState::Skipped { reason } => format!("skipped: {}", inert(reason)),
    }
}

/// One line of `keydeck incident list`.
pub fn incident_line(id: &str, p: &Plan) -> String {
    let done = p.steps.iter().filter(|s| matches!(s.state, StepState::Done { .. } | StepState::Skipped { .. })).count();
    format!(
        "{id}  {:<22}  on {}  {done}/{} steps  elapsed {}  next {}",
        p.runbook,
        inert(&p.target),
        p.steps.len(),
        hms(p.elapsed_secs),
        p.next.as_ref().map(|n| n.step.as_str()).unwrap_or("-")
    )
}

/// `keydeck incident status`: one line per step in order (id, title, state), the
/// clocks, and the next step's exact calls.
pub fn incident_status(p: &Plan) -> String {
    let mut out = format!(
        "incident {}  runbook {}  on {} ({})  opened {}  detected {}\n",
        p.incident_id,
        p.runbook,
        inert(&p.target),
        p.target_arn,
        p.opened_at.format("%Y-%m-%d %H:%M:%SZ"),
        p.detected_at.format("%Y-%m-%d %H:%M:%SZ")
    );
    for s in &p.steps {
        out.push_str(&format!("{:<18}  {:<48}  {}\n", s.id, inert(&s.title), step_state_text(&s.state)));
    }
    out.push_str(&format!("elapsed {}", hms(p.elapsed_secs)));
    if let Some(t) = p.time_to_containment_secs {
        out.push_str(&format!("; contained after {}", hms(t)));
    }
    out.push('\n');
    for d in &p.deadlines {
        let state = match d.met_at {
            Some(at) => format!("met {} ({} to spare)", at.format("%Y-%m-%d %H:%M:%SZ"), hms(d.remaining_secs)),
            None if d.remaining_secs < 0 => format!("OVERDUE by {}", hms(-d.remaining_secs)),
            None => format!("{} left", hms(d.remaining_secs)),
        };
        out.push_str(&format!(
            "{:<28} due {}  {state}  ({})\n",
            inert(&d.name),
            d.due.format("%Y-%m-%d %H:%M:%SZ"),
            inert(&d.source)
        ));
    }
    if let Some(n) = &p.next {
        out.push_str(&format!("next: {}\n", n.step));
        match &n.work {
            Ok(Work::Calls { ops, .. }) => {
                for op in ops {
                    out.push_str(&format!("  will call {}\n", op.describe()));
                }
            }
            Ok(Work::Acknowledge) => out.push_str("  an acknowledgement: --note says what was done\n"),
            Err(r) => out.push_str(&format!("  {}\n", inert(&r.to_string()))),
        }
        for r in &n.refusals {
            out.push_str(&format!("  {}\n", inert(&r.to_string())));
        }
    }
    for w in &p.warnings {
        out.push_str(&format!("warning: {}\n", inert(w)));
    }
    out
}

/// What `keydeck incident run` prints: the step's result and each call with its request id.
pub fn step_report(step: &str, result: &str, results: &[CallResult]) -> String {
    let mut out = format!("{step}: {result}\n");
    for c in results {
        let rid = c.request_id.as_deref().unwrap_or("-");
        match &c.error {
            None => out.push_str(&format!("  {}  ok  request {rid}\n", c.call)),
            Some(e) => out.push_str(&format!("  {}  FAILED  request {rid}: {}\n", c.call, inert(e))),
        }
        // A CloudTrail report (scope, verify): who called the key, how, with what outcome.
        if let Some(sc) =
            c.fields.get("Scope").and_then(|v| serde_json::from_value::<crate::domain::scope::Scope>(v.clone()).ok())
        {
            out.push_str(&format!("    {} events, {} metadata reads\n", sc.events, sc.metadata_reads));
            for k in &sc.callers {
                let named: Vec<String> = k.named_by.iter().map(|n| format!("{n:?}")).collect();
                out.push_str(&format!(
                    "    {:<48} {:<22} {:>6} calls {:>5} failed  named by {}\n",
                    inert(&k.principal),
                    inert(&k.operation),
                    k.calls,
                    k.failed,
                    named.join(",")
                ));
            }
            if !sc.needs_config_change.is_empty() {
                out.push_str(&format!(
                    "    need a configuration change (name the key by id or ARN): {}\n",
                    inert(&sc.needs_config_change.join(", "))
                ));
            }
        }
    }
    out
}

/// One event of the post-mortem timeline.
#[derive(Debug, Serialize)]
pub struct TimelineEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    /// Seconds since the incident was opened.
    pub t_secs: i64,
    pub actor: String,
    pub step: Option<String>,
    pub what: String,
    pub request_ids: Vec<String>,
}

/// The post-mortem timeline of an incident (004 §10 "Document"): who did what when, with
/// AWS request ids, the time each step took, time to containment and the clocks.
pub fn incident_timeline(p: &Plan, records: &[IncidentRecord]) -> serde_json::Value {
    let mut entries = Vec::new();
    let mut started: std::collections::HashMap<(String, u32), chrono::DateTime<chrono::Utc>> = Default::default();
    let mut step_secs: Vec<serde_json::Value> = Vec::new();
    for r in records {
        let (step, what, rids) = match &r.record {
            StepRecord::Opened(o) => {
                (None, format!("opened on {} ({}): {}", o.target.arn(), o.runbook, o.note), vec![])
            }
            StepRecord::Intent { step, attempt, ops } => {
                started.insert((step.clone(), *attempt), r.at);
                let calls: Vec<String> = ops.iter().map(|o| o.describe()).collect();
                (Some(step.clone()), format!("attempt {attempt}: will call {}", calls.join("; ")), vec![])
            }
            StepRecord::Outcome { step, attempt, ok, results } => {
                if let Some(t0) = started.get(&(step.clone(), *attempt)) {
                    step_secs.push(serde_json::json!({"step": step, "attempt": attempt, "ok": ok,
                        "secs": (r.at - *t0).num_milliseconds() as f64 / 1000.0}));
                }
                let rids: Vec<String> = results
                    .iter()
                    .flat_map(|c| {
                        // A re-encryption lists its items' request ids in its fields.
                        let items = c
                            .fields
                            .get("RequestIds")
                            .and_then(|v| v.as_array())
                            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect::<Vec<_>>());
                        c.request_id.clone().into_iter().chain(items.unwrap_or_default())
                    })
                    .collect();
                let errs: Vec<String> = results.iter().filter_map(|c| c.error.clone()).collect();
                let mut what = if *ok {
                    format!("attempt {attempt}: done")
                } else {
                    format!("attempt {attempt}: failed: {}", errs.join("; "))
                };
                for c in results {
                    if let Some(n) = c.fields.get("ReEncrypted").and_then(|v| v.as_u64()) {
                        what.push_str(&format!("; {n} ciphertexts re-encrypted"));
                    }
                    if let Some(f) = c.fields.get("RequestIdsFile").and_then(|v| v.as_str()) {
                        what.push_str(&format!(" (their request ids line for line in {f})"));
                    }
                    let scope =
                        c.fields.get("Scope").cloned().map(serde_json::from_value::<crate::domain::scope::Scope>);
                    if let Some(Ok(sc)) = scope {
                        let callers: Vec<String> = sc
                            .callers
                            .iter()
                            .map(|k| format!("{} {} x{} ({} failed)", k.principal, k.operation, k.calls, k.failed))
                            .collect();
                        what.push_str(&format!("; CloudTrail: {} events; {}", sc.events, callers.join(", ")));
                    }
                }
                (Some(step.clone()), what, rids)
            }
            StepRecord::Resolved { step, attempt, settled_done, .. } => (
                Some(step.clone()),
                format!(
                    "attempt {attempt}: outcome unknown, settled by reading AWS: {}",
                    if *settled_done { "done" } else { "not done" }
                ),
                vec![],
            ),
            StepRecord::Skipped { step, reason } => (Some(step.clone()), format!("skipped: {reason}"), vec![]),
            StepRecord::Acknowledged { step, note } => (Some(step.clone()), format!("acknowledged: {note}"), vec![]),
            StepRecord::ApprovalRequested { step, approval, request_id, .. } => {
                (Some(step.clone()), format!("{} request {request_id} proposed (004 §6)", approval.name()), vec![])
            }
            StepRecord::ApprovalExecuted { step, request_id, approver, results } => {
                let by = approver.as_deref().unwrap_or("(not yet attested)");
                let made =
                    results.iter().filter_map(|c| c.fields.pointer("/KeyMetadata/Arn")?.as_str()).collect::<Vec<_>>();
                (Some(step.clone()), format!("request {request_id} executed by {by}: {}", made.join(", ")), vec![])
            }
            StepRecord::ApprovalEnded { step, request_id, state, by, reason } => {
                let by = by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
                (Some(step.clone()), format!("request {request_id} {state}{by}: {reason}"), vec![])
            }
        };
        entries.push(TimelineEntry {
            at: r.at,
            t_secs: (r.at - p.opened_at).num_seconds(),
            actor: r.actor.clone(),
            step,
            what: inert(&what),
            request_ids: rids,
        });
    }
    serde_json::json!({
        "incident": p.incident_id,
        "runbook": p.runbook,
        "opened_at": p.opened_at,
        "detected_at": p.detected_at,
        "time_to_containment_secs": p.time_to_containment_secs,
        "deadlines": p.deadlines,
        "steps": p.steps,
        "step_durations": step_secs,
        "timeline": entries,
    })
}

/// The post-mortem timeline in Markdown.
pub fn incident_markdown(p: &Plan, records: &[IncidentRecord]) -> String {
    let t = incident_timeline(p, records);
    let mut out = format!("# Incident {}\n\n", p.incident_id);
    out.push_str(&format!(
        "- Runbook: {}\n- Target: {} ({})\n- Detected: {}\n- Opened: {}\n",
        p.runbook,
        inert(&p.target),
        p.target_arn,
        p.detected_at.format("%Y-%m-%d %H:%M:%S UTC"),
        p.opened_at.format("%Y-%m-%d %H:%M:%S UTC")
    ));
    match p.time_to_containment_secs {
        Some(s) => out.push_str(&format!("- Time to containment: {} (target 1 hour, 004 §10)\n", hms(s))),
        None => out.push_str("- Not contained yet\n"),
    }
    for d in &p.deadlines {
        out.push_str(&format!(
            "- {}: due {}{}\n",
            d.name,
            d.due.format("%Y-%m-%d %H:%M UTC"),
            d.met_at.map(|m| format!(", met {}", m.format("%Y-%m-%d %H:%M UTC"))).unwrap_or_default()
        ));
    }
    out.push_str("\n## Steps\n\n| step | state | attempts |\n| --- | --- | --- |\n");
    for s in &p.steps {
        out.push_str(&format!("| {} | {} | {} |\n", s.id, step_state_text(&s.state).replace('|', "\\|"), s.attempts));
    }
    out.push_str("\n## Timeline\n\n| time (UTC) | +elapsed | who | step | what | AWS request ids |\n| --- | --- | --- | --- | --- | --- |\n");
    if let Some(entries) = t.get("timeline").and_then(|v| v.as_array()) {
        for e in entries {
            let s = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").replace('|', "\\|");
            let rids: Vec<&str> = e
                .get("request_ids")
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            let secs = e.get("t_secs").and_then(|v| v.as_i64()).unwrap_or(0);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                s("at"),
                hms(secs),
                s("actor"),
                s("step"),
                s("what"),
                rids.join(" ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod incident_tests {
    use super::*;

    #[test]
    fn a_cloudtrail_report_and_a_re_encryption_are_shown_not_only_stored() {
        let scope = crate::domain::scope::Scope {
            events: 17,
            callers: vec![crate::domain::scope::Caller {
                principal: "arn:aws:iam::123456789012:user/app-runner".into(),
                operation: "Decrypt".into(),
                calls: 16,
                failed: 15,
                first: chrono::DateTime::UNIX_EPOCH,
                last: chrono::DateTime::UNIX_EPOCH,
                named_by: [crate::domain::scope::NamedBy::Ciphertext].into(),
            }],
            needs_config_change: vec![],
            principals: vec![],
            metadata_reads: 1,
        };
        let lookup = CallResult {
            call: "cloudtrail:LookupEvents".into(),
            request_id: None,
            fields: serde_json::json!({"Scope": scope, "Calls": 2, "Throttled": 0}),
            error_code: None,
            error: None,
        };
        let out = step_report("verify", "done", &[lookup]);
        assert!(out.contains("user/app-runner") && out.contains("16 calls") && out.contains("15 failed"), "{out}");
        let reenc = CallResult {
            call: "kms:ReEncrypt".into(),
            request_id: None,
            fields: serde_json::json!({"ReEncrypted": 5, "RequestIdsFile": "/tmp/blobs.txt.reencrypted.requestids"}),
            error_code: None,
            error: None,
        };
        let records = vec![IncidentRecord {
            at: chrono::DateTime::UNIX_EPOCH,
            actor: "arn:aws:iam::123456789012:user/security-lead".into(),
            record: StepRecord::Outcome { step: "re-encrypt".into(), attempt: 1, ok: true, results: vec![reenc] },
        }];
        let plan = Plan {
            incident_id: "i".into(),
            runbook: "kms-key-compromise".into(),
            target: "drop-kyc-key".into(),
            target_arn: "arn:aws:kms:eu-north-1:123456789012:key/k".into(),
            opened_at: chrono::DateTime::UNIX_EPOCH,
            detected_at: chrono::DateTime::UNIX_EPOCH,
            elapsed_secs: 0,
            time_to_containment_secs: None,
            deadlines: vec![],
            steps: vec![],
            next: None,
            warnings: vec![],
        };
        let md = incident_markdown(&plan, &records);
        assert!(md.contains("5 ciphertexts re-encrypted") && md.contains("blobs.txt.reencrypted.requestids"), "{md}");
    }
}
