//! Engine and parser tests over the embedded runbooks and inline fixtures.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use super::engine::request_token;
use super::*;

const KEY_ARN: &str = "arn:aws:kms:eu-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const NEW_ARN: &str = "arn:aws:kms:eu-north-1:123456789012:key/9999ffff-12ab-34cd-56ef-1234567890ab";
const SECRET_ARN: &str = "arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-AbCdEf";
const TOPIC: &str = "arn:aws:sns:eu-north-1:123456789012:security-incident";
const LEAD: &str = "arn:aws:iam::123456789012:user/security-lead";
const ADMIN: &str = "arn:aws:iam::123456789012:user/key-admin";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}"#;

/// 2026-03-02 at hh:mm UTC (detection is at 09:00, opening at 09:10).
fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
}

fn kms() -> Runbook {
    Runbook::parse(EMBEDDED[0].0, EMBEDDED[0].1).expect("embedded KMS runbook is valid")
}

fn jwt() -> Runbook {
    Runbook::parse(EMBEDDED[1].0, EMBEDDED[1].1).expect("embedded JWT runbook is valid")
}

fn key_target() -> IncidentTarget {
    IncidentTarget::Key(KeyTarget {
        arn: KEY_ARN.into(),
        key_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into(),
        region: "eu-north-1".into(),
        aliases: vec!["drop-kyc-key".into()],
        key_spec: "SYMMETRIC_DEFAULT".into(),
        key_usage: "ENCRYPT_DECRYPT".into(),
        description: "KYC document objects in S3".into(),
        tags: BTreeMap::from([("classification".into(), "L4".into())]),
        policy: POLICY.into(),
    })
}

fn secret_target(rotation_enabled: bool) -> IncidentTarget {
    IncidentTarget::Secret(SecretTarget {
        arn: SECRET_ARN.into(),
        name: "JWT_SECRET".into(),
        region: "eu-north-1".into(),
        rotation_enabled,
        current_version_id: "v-compromised".into(),
    })
}

/// An incident log under construction.
struct Log<'r> {
    runbook: &'r Runbook,
    records: Vec<IncidentRecord>,
}

impl<'r> Log<'r> {
    fn open(runbook: &'r Runbook, target: IncidentTarget, topic: Option<&str>) -> Self {
        let opened = Opened {
            incident_id: "inc-1".into(),
            runbook: runbook.id.clone(),
            target,
            detected_at: at(9, 0),
            note: "unauthorised Decrypt by outsider in CloudTrail".into(),
            notify_topic_arn: topic.map(str::to_owned),
        };
        let mut log = Self { runbook, records: vec![] };
        log.push(at(9, 10), LEAD, StepRecord::Opened(Box::new(opened)));
        log
    }

    fn push(&mut self, at: DateTime<Utc>, actor: &str, record: StepRecord) {
        self.records.push(IncidentRecord { at, actor: actor.into(), record });
    }

    fn incident(&self) -> Incident<'r> {
        Incident::replay(self.runbook, &self.records).expect("replays")
    }

    fn plan(&self, now: DateTime<Utc>) -> Plan {
        plan(self.runbook, &self.records, now).expect("replays")
    }

    fn state(&self, step: &str) -> StepState {
        self.plan(at(9, 59)).steps.into_iter().find(|s| s.id == step).expect("step").state
    }

    /// Everything an operator may supply.
    fn input(&self, files: &[&str]) -> StepInput {
        StepInput {
            note: Some("checked".into()),
            confirm: Some(self.incident().opened().target.confirm_text().to_owned()),
            files: files.iter().map(|f| f.to_string()).collect(),
            principal_arn: Some(LEAD.into()),
        }
    }

    /// The intent the engine prepares for `step`, written at `t`; returns its ops.
    fn intent(&mut self, step: &str, t: DateTime<Utc>) -> (u32, Vec<Op>) {
        let Ok(Work::Calls { attempt, ops }) = self.incident().prepare(step, &self.input(&["a.bin"])) else {
            panic!("{step} has calls to make")
        };
        self.push(t, LEAD, StepRecord::Intent { step: step.into(), attempt, ops: ops.clone() });
        (attempt, ops)
    }

    /// Run `step` at `t`: intent, then a successful outcome whose i-th result has
    /// `fields[i]` (null beyond).
    fn run(&mut self, step: &str, t: DateTime<Utc>, fields: &[Value]) -> Vec<Op> {
        let (attempt, ops) = self.intent(step, t);
        let results = (ops.iter().enumerate())
            .map(|(i, op)| result(op, fields.get(i).cloned().unwrap_or(Value::Null), None))
            .collect();
        self.push(t, LEAD, StepRecord::Outcome { step: step.into(), attempt, ok: true, results });
        ops
    }

    fn ack(&mut self, step: &str, t: DateTime<Utc>) {
        self.push(t, LEAD, StepRecord::Acknowledged { step: step.into(), note: "done".into() });
    }

    fn skip(&mut self, step: &str, reason: &str) {
        self.push(at(9, 20), LEAD, StepRecord::Skipped { step: step.into(), reason: reason.into() });
    }
}

fn result(op: &Op, fields: Value, error: Option<(&str, &str)>) -> CallResult {
    CallResult {
        call: op.call().name().into(),
        request_id: Some("req-1".into()),
        fields,
        error_code: error.map(|e| e.0.into()),
        error: error.map(|e| e.1.into()),
    }
}

fn ids(r: &Runbook) -> Vec<&str> {
    r.steps.iter().map(|s| s.id.as_str()).collect()
}

fn calls(work: Result<Work, Vec<Refusal>>) -> Vec<Op> {
    match work {
        Ok(Work::Calls { ops, .. }) => ops,
        other => panic!("expected calls, got {other:?}"),
    }
}

fn created_key() -> Value {
    json!({"KeyMetadata": {"KeyId": "9999ffff-12ab-34cd-56ef-1234567890ab", "Arn": NEW_ARN, "KeyState": "Enabled"}})
}

/// What the approver's CreateKey made, as `approval.executed` records it.
fn executed(request_id: &str) -> StepRecord {
    let result = CallResult {
        call: "kms:CreateKey".into(),
        request_id: None,
        fields: created_key(),
        error_code: None,
        error: None,
    };
    StepRecord::ApprovalExecuted {
        step: "create-key".into(),
        request_id: request_id.into(),
        approver: Some(LEAD.into()),
        results: vec![result],
    }
}

/// Request create-key (the key-admin proposes r-1) and record the security lead's
/// execution of it.
fn create_replacement(log: &mut Log<'_>, t: DateTime<Utc>) {
    let refusals = log.incident().prepare("create-key", &log.input(&[])).unwrap_err();
    let [Refusal::NeedsApproval { ops, .. }] = refusals.as_slice() else { panic!("{refusals:?}") };
    let ops = ops.clone();
    let requested = StepRecord::ApprovalRequested {
        step: "create-key".into(),
        approval: Approval::CreateKey,
        ops,
        request_id: "r-1".into(),
    };
    log.push(t, ADMIN, requested);
    log.push(t, LEAD, executed("r-1"));
}

#[test]
fn embedded_runbooks_parse_with_the_policy_steps() {
    let k = kms();
    assert_eq!(
        ids(&k),
        [
            "open",
            "notify",
            "scope",
            "disable",
            "create-key",
            "enable-rotation",
            "repoint-aliases",
            "deploy",
            "revoke-grants",
            "quarantine",
            "re-encrypt",
            "end-quarantine",
            "verify",
            "breach-assessment",
            "document",
            "post-mortem"
        ]
    );
    let j = jwt();
    assert_eq!(
        ids(&j),
        [
            "open",
            "rotate",
            "notify",
            "verify-rotation",
            "deploy",
            "stage-out-previous",
            "sessions",
            "scope",
            "verify",
            "breach-assessment",
            "document",
            "post-mortem"
        ]
    );
    assert_eq!(Runbook::embedded().unwrap(), [k.clone(), j.clone()]);
    for s in k.steps.iter().chain(&j.steps) {
        assert!(s.source.starts_with("004 §"), "{} cites the policy: {}", s.id, s.source);
    }
    let disable = k.step("disable").unwrap();
    assert!(disable.destructive && disable.required && disable.kind == StepKind::Action);
    assert_eq!(k.step("create-key").unwrap().approval, Some(Approval::CreateKey));
    assert!(k.step("re-encrypt").unwrap().file);
    let clocks: Vec<(&str, i64, ClockStart, &str)> =
        k.deadlines.iter().map(|d| (d.name.as_str(), d.within_secs, d.from, d.until.as_str())).collect();
    assert_eq!(
        clocks,
        [
            ("containment", 3600, ClockStart::Detected, "disable"),
            ("breach-notification", 72 * 3600, ClockStart::Detected, "breach-assessment"),
            ("post-mortem", 48 * 3600, ClockStart::Opened, "post-mortem"),
        ]
    );
    assert_eq!((k.containment.as_str(), j.containment.as_str()), ("disable", "rotate"));
}

const HEAD: &str = "[runbook]\nid = \"t\"\ntitle = \"T\"\ntarget = \"key\"\ncontainment = \"open\"\n\n\
                    [[steps]]\nid = \"open\"\ntitle = \"Open\"\nkind = \"ack\"\nsource = \"004\"\nexplain = \"x\"\n";

/// `body` follows HEAD's 12 lines, so its first line is line 13.
fn rejected(body: &str) -> RunbookError {
    Runbook::parse("r.toml", &format!("{HEAD}{body}")).expect_err("must be rejected")
}

#[test]
fn the_test_head_alone_is_a_valid_runbook() {
    assert_eq!(ids(&Runbook::parse("r.toml", HEAD).unwrap()), ["open"]);
}

#[test]
fn rejected_runbooks_point_at_the_offending_value() {
    let step = |id: &str, rest: &str| {
        format!("[[steps]]\nid = \"{id}\"\ntitle = \"S\"\n{rest}source = \"004\"\nexplain = \"x\"\n")
    };
    let cases: Vec<(String, (usize, usize), &str)> = vec![
        (step("open", "kind = \"ack\"\n"), (14, 6), "duplicate step id \"open\""),
        (step("a", "kind = \"ack\"\ndepends_on = [\"open\", \"nope\"]\n"), (17, 23), "unknown step \"nope\""),
        (
            step("a", "kind = \"ack\"\ndepends_on = [\"b\"]\n") + &step("b", "kind = \"ack\"\n"),
            (17, 15),
            "a later step",
        ),
        (step("a", "kind = \"ack\"\ndepends_on = [\"a\"]\n"), (17, 15), "depends on itself"),
        (step("a", "kind = \"ack\"\ndestructive = true\n"), (17, 15), "only an action can be destructive"),
        (step("a", "kind = \"actoin\"\n"), (16, 8), "unknown step kind \"actoin\""),
        (step("a", "kind = \"action\"\ncalls = [{ call = \"kms:ScheduleKeyDeletion\" }]\n"), (17, 19), "never delete"),
        (step("a", "kind = \"query\"\ncalls = [{ call = \"kms:DisableKey\" }]\n"), (17, 19), "a query step only reads"),
        (
            step("a", "kind = \"ack\"\ncalls = [{ call = \"kms:ListGrants\" }]\n"),
            (17, 19),
            "an ack step makes no AWS calls",
        ),
        (
            step("a", "kind = \"action\"\ncalls = [{ call = \"kms:ListGrants\" }]\n"),
            (16, 8),
            "needs a call that changes",
        ),
        (
            step("a", "kind = \"action\"\ncalls = [{ call = \"secretsmanager:RotateSecret\" }]\n"),
            (17, 19),
            "this runbook's target is a Key",
        ),
        (
            step("a", "kind = \"action\"\nfile = true\ncalls = [{ call = \"kms:DisableKey\" }]\n"),
            (17, 8),
            "`file` is for",
        ),
        (step("A_B", "kind = \"ack\"\n"), (14, 6), "kebab-case"),
        (step("a", "kind = \"ack\"\ndependson = [\"open\"]\n"), (17, 1), "dependson"),
        (
            step("a", "kind = \"query\"\ncalls = [{ call = \"cloudtrail:LookupEvents\", lookback = \"30 days\" }]\n"),
            (17, 57),
            "bad duration \"30 days\"",
        ),
    ];
    for (body, (line, column), message) in cases {
        let e = rejected(&body);
        assert_eq!((e.file.as_str(), e.line, e.column), ("r.toml", line, column), "{e}\n{body}");
        assert!(e.message.contains(message), "{e}");
    }
    let e = Runbook::parse("r.toml", &HEAD.replace("containment = \"open\"", "containment = \"disable\"")).unwrap_err();
    assert_eq!((e.line, e.column), (5, 15), "{e}");
    let e = Runbook::parse(
        "r.toml",
        &HEAD.replace("kind = \"ack\"", "kind = \"query\"\ncalls = [{ call = \"kms:ListGrants\" }]"),
    )
    .unwrap_err();
    assert!(e.message.contains("first step"), "{e}");
}

#[test]
fn record_kinds_map_one_to_one_onto_the_log() {
    let intent = IncidentRecord {
        at: at(9, 30),
        actor: LEAD.into(),
        record: StepRecord::Intent {
            step: "disable".into(),
            attempt: 1,
            ops: vec![Op::DisableKey { key_id: KEY_ARN.into() }],
        },
    };
    assert_eq!(
        serde_json::to_value(&intent).unwrap(),
        json!({"at": "2026-03-02T09:30:00Z", "actor": LEAD, "kind": "step.intent",
               "body": {"step": "disable", "attempt": 1, "ops": [{"call": "kms:DisableKey", "key_id": KEY_ARN}]}})
    );
    let rb = kms();
    let log = Log::open(&rb, key_target(), None);
    let samples = [
        log.records[0].record.clone(),
        intent.record.clone(),
        StepRecord::Outcome { step: "disable".into(), attempt: 1, ok: true, results: vec![] },
        StepRecord::Resolved { step: "disable".into(), attempt: 1, settled_done: true, observed: json!({}) },
        StepRecord::Skipped { step: "scope".into(), reason: "r".into() },
        StepRecord::Acknowledged { step: "deploy".into(), note: "n".into() },
        StepRecord::ApprovalRequested {
            step: "create-key".into(),
            approval: Approval::CreateKey,
            ops: vec![],
            request_id: "r-1".into(),
        },
        executed("r-1"),
        StepRecord::ApprovalEnded {
            step: "create-key".into(),
            request_id: "r-1".into(),
            state: "rejected".into(),
            by: Some(LEAD.into()),
            reason: "r".into(),
        },
    ];
    let kinds: BTreeSet<&str> = samples.iter().map(StepRecord::kind).collect();
    assert_eq!(kinds.len(), samples.len(), "one kind per record");
    for record in samples {
        let r = IncidentRecord { at: at(9, 0), actor: LEAD.into(), record };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kind"], r.record.kind());
        assert!(v["body"].is_object(), "{v}");
        assert_eq!(serde_json::from_value::<IncidentRecord>(v).unwrap(), r);
    }
}

#[test]
fn fresh_incident() {
    let rb = kms();
    let log = Log::open(&rb, key_target(), None);
    let p = log.plan(at(9, 20));
    assert_eq!((p.incident_id.as_str(), p.elapsed_secs, p.time_to_containment_secs), ("inc-1", 600, None));
    let state = |id: &str| p.steps.iter().find(|s| s.id == id).unwrap().state.clone();
    assert_eq!(state("open"), StepState::Done { at: at(9, 10) });
    for id in ["notify", "scope", "disable", "create-key"] {
        assert_eq!(state(id), StepState::Pending, "{id}");
    }
    assert_eq!(state("enable-rotation"), StepState::Blocked { by: vec!["create-key".into()] });
    assert_eq!(state("revoke-grants"), StepState::Blocked { by: vec!["scope".into(), "disable".into()] });
    let next = p.next.unwrap();
    assert_eq!((next.step.as_str(), next.work), ("notify", Ok(Work::Acknowledge)), "no topic: acknowledge");
    assert_eq!(next.refusals, [Refusal::NeedsNote]);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);

    let log = Log::open(&rb, key_target(), Some(TOPIC));
    let ops = calls(log.incident().prepare("notify", &StepInput::default()));
    let [Op::Publish { topic_arn, subject, message }] = ops.as_slice() else { panic!("{ops:?}") };
    assert_eq!(topic_arn, TOPIC);
    assert_eq!(subject, "keydeck incident inc-1: kms-key-compromise alias/drop-kyc-key");
    assert!(message.contains(KEY_ARN) && message.contains("unauthorised Decrypt"), "{message}");
    assert!(!message.contains("Enable IAM User Permissions"), "no policy text in the summary");
}

#[test]
fn disable_needs_the_alias_typed_and_carries_the_key_arn() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    let inc = log.incident();
    let no_confirm = StepInput { note: None, ..log.input(&[]) };
    let no_confirm = StepInput { confirm: None, ..no_confirm };
    assert_eq!(
        inc.prepare("disable", &no_confirm),
        Err(vec![Refusal::NeedsConfirmation { expected: "drop-kyc-key".into() }])
    );
    let wrong = StepInput { confirm: Some("drop-kyc".into()), ..log.input(&[]) };
    assert_eq!(
        inc.prepare("disable", &wrong),
        Err(vec![Refusal::ConfirmationMismatch { expected: "drop-kyc-key".into() }])
    );
    let ops = calls(inc.prepare("disable", &log.input(&[])));
    assert_eq!(ops, [Op::DisableKey { key_id: KEY_ARN.into() }]);
    assert_eq!(ops[0].describe(), format!("kms:DisableKey KeyId={KEY_ARN}"));
    assert_eq!(inc.may_skip("disable", "not needed"), Err(vec![Refusal::Required]));
    assert_eq!(inc.may_skip("scope", "  "), Err(vec![Refusal::NeedsReason]));
    assert_eq!(inc.prepare("nope", &log.input(&[])), Err(vec![Refusal::UnknownStep { step: "nope".into() }]));

    log.run("disable", at(9, 30), &[]);
    let p = log.plan(at(9, 45));
    assert_eq!(log.state("disable"), StepState::Done { at: at(9, 30) });
    assert_eq!(p.time_to_containment_secs, Some(20 * 60));
    let containment = &p.deadlines[0];
    assert_eq!((containment.due, containment.met_at, containment.remaining_secs), (at(10, 0), Some(at(9, 30)), 1800));
    assert_eq!(log.state("revoke-grants"), StepState::Blocked { by: vec!["scope".into()] });
    let inc = log.incident();
    assert_eq!(inc.prepare("disable", &log.input(&[])), Err(vec![Refusal::AlreadyDone]));
    assert_eq!(inc.may_skip("disable", "x"), Err(vec![Refusal::AlreadyDone, Refusal::Required]));
}

#[test]
fn failed_steps_say_whether_a_retry_can_help() {
    let rb = kms();
    for (code, retryable) in [("ThrottlingException", true), ("AccessDeniedException", false)] {
        let mut log = Log::open(&rb, key_target(), None);
        let (attempt, ops) = log.intent("scope", at(9, 15));
        let aliases = json!({"Aliases": [{"AliasName": "alias/kyc-legacy"}]});
        let results = vec![result(&ops[0], aliases, None), result(&ops[1], Value::Null, Some((code, "no")))];
        log.push(at(9, 16), LEAD, StepRecord::Outcome { step: "scope".into(), attempt, ok: false, results });
        assert_eq!(
            log.state("scope"),
            StepState::Failed { attempt: 1, error: format!("kms:GetKeyPolicy: {code}: no"), retryable }
        );
        let Ok(Work::Calls { attempt, .. }) = log.incident().prepare("scope", &StepInput::default()) else {
            panic!("a failed step runs again")
        };
        assert_eq!(attempt, 2);
        assert_eq!(log.incident().may_skip("scope", "CloudTrail unavailable"), Ok(()));
        // The alias found before the failure is still learned.
        create_replacement(&mut log, at(9, 20));
        let ops = calls(log.incident().prepare("repoint-aliases", &log.input(&[])));
        let aliases: Vec<&str> = ops
            .iter()
            .map(|op| match op {
                Op::UpdateAlias { alias_name, .. } => alias_name.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(aliases, ["alias/drop-kyc-key", "alias/kyc-legacy"]);
    }
}

#[test]
fn skipped_steps_keep_their_reason_and_unblock_dependants() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    log.run("disable", at(9, 12), &[]);
    log.skip("scope", "CloudTrail read by the SOC");
    assert_eq!(log.state("scope"), StepState::Skipped { reason: "CloudTrail read by the SOC".into() });
    assert_eq!(log.state("breach-assessment"), StepState::Pending);
    assert_eq!(log.state("revoke-grants"), StepState::Pending);
    let refusals = log.incident().prepare("revoke-grants", &log.input(&[])).unwrap_err();
    assert!(
        matches!(refusals.as_slice(), [Refusal::MissingFact { what }] if what.contains("kms:ListGrants")),
        "{refusals:?}"
    );
    assert_eq!(log.incident().prepare("scope", &log.input(&[])), Err(vec![Refusal::AlreadySkipped]));
    // A required step may be skipped only once everything it depends on was skipped.
    assert_eq!(log.incident().may_skip("end-quarantine", "nothing to re-encrypt"), Err(vec![Refusal::Required]));
    log.skip("quarantine", "nothing to re-encrypt");
    assert_eq!(log.incident().may_skip("end-quarantine", "nothing to re-encrypt"), Err(vec![Refusal::Required]));
    log.skip("re-encrypt", "nothing to re-encrypt");
    assert_eq!(log.incident().may_skip("end-quarantine", "nothing to re-encrypt"), Ok(()));
    // A record that does not fit is ignored with a warning.
    log.push(at(9, 21), LEAD, StepRecord::Acknowledged { step: "disable".into(), note: "again".into() });
    log.push(at(9, 21), LEAD, StepRecord::Skipped { step: "no-such-step".into(), reason: "x".into() });
    let p = log.plan(at(9, 22));
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(
        p.warnings[0].starts_with("record 7 (step.acknowledged): disable cannot be acknowledged now"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn an_intent_without_outcome_is_unknown_until_resolved() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    log.ack("notify", at(9, 11));
    let (attempt, ops) = log.intent("scope", at(9, 12));
    assert_eq!(log.state("scope"), StepState::Unknown { attempt: 1 });
    let next = log.plan(at(9, 13)).next.unwrap();
    assert_eq!((next.step.as_str(), next.work), ("scope", Ok(Work::Calls { attempt, ops: ops.clone() })));
    assert_eq!(next.refusals, [Refusal::OutcomeUnknown { attempt: 1 }]);
    assert_eq!(log.incident().may_skip("scope", "x"), Err(vec![Refusal::OutcomeUnknown { attempt: 1 }]));
    // A second intent before the first is settled does not count.
    log.push(at(9, 14), LEAD, StepRecord::Intent { step: "scope".into(), attempt: 2, ops: ops.clone() });
    assert_eq!(log.state("scope"), StepState::Unknown { attempt: 1 });

    let mut settled = Log { runbook: &rb, records: log.records.clone() };
    let observed = json!({});
    settled.push(
        at(9, 20),
        LEAD,
        StepRecord::Resolved { step: "scope".into(), attempt: 1, settled_done: true, observed },
    );
    assert_eq!(settled.state("scope"), StepState::Done { at: at(9, 20) });
    log.push(
        at(9, 20),
        LEAD,
        StepRecord::Resolved { step: "scope".into(), attempt: 1, settled_done: false, observed: json!({}) },
    );
    assert!(matches!(log.state("scope"), StepState::Failed { attempt: 1, retryable: true, .. }));
}

#[test]
fn deadlines_run_from_detection_and_opening() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    let p = log.plan(at(9, 40));
    assert_eq!((p.detected_at, p.opened_at, p.elapsed_secs), (at(9, 0), at(9, 10), 30 * 60));
    let d: Vec<_> = p.deadlines.iter().map(|d| (d.name.as_str(), d.due, d.met_at, d.remaining_secs)).collect();
    let day = |d: u32, h: u32, m: u32| Utc.with_ymd_and_hms(2026, 3, d, h, m, 0).unwrap();
    assert_eq!(
        d,
        [
            ("containment", at(10, 0), None, 20 * 60),
            ("breach-notification", day(5, 9, 0), None, 72 * 3600 - 40 * 60),
            ("post-mortem", day(4, 9, 10), None, 48 * 3600 - 30 * 60),
        ]
    );
    assert_eq!(log.plan(at(10, 15)).deadlines[0].remaining_secs, -15 * 60, "late containment is negative");
    log.run("disable", at(10, 5), &[]);
    let p = log.plan(at(11, 0));
    assert_eq!((p.deadlines[0].met_at, p.deadlines[0].remaining_secs), (Some(at(10, 5)), -5 * 60));
    assert_eq!(p.time_to_containment_secs, Some(55 * 60));
    log.ack("breach-assessment", at(12, 0));
    let p = log.plan(at(13, 0));
    assert_eq!((p.deadlines[1].met_at, p.deadlines[1].remaining_secs), (Some(at(12, 0)), 69 * 3600));
}

#[test]
fn create_key_is_approved_by_a_second_person_and_copies_the_target() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    let inc = log.incident();
    let refusals = inc.prepare("create-key", &log.input(&[])).unwrap_err();
    let [Refusal::NeedsApproval { approval: Approval::CreateKey, ops }] = refusals.as_slice() else {
        panic!("{refusals:?}")
    };
    let ops = ops.clone();
    let tags = BTreeMap::from([
        ("classification".to_string(), "L4".to_string()),
        ("keydeck:incident".into(), "inc-1".into()),
        ("keydeck:replaces".into(), "1234abcd-12ab-34cd-56ef-1234567890ab".into()),
    ]);
    let want = Op::CreateKey {
        region: "eu-north-1".into(),
        key_spec: "SYMMETRIC_DEFAULT".into(),
        key_usage: "ENCRYPT_DECRYPT".into(),
        description: "KYC document objects in S3".into(),
        policy: POLICY.into(),
        tags,
    };
    assert_eq!(ops, std::slice::from_ref(&want));
    assert!(want
        .describe()
        .starts_with("kms:CreateKey (eu-north-1) KeySpec=SYMMETRIC_DEFAULT KeyUsage=ENCRYPT_DECRYPT"));
    let requested = |id: &str| StepRecord::ApprovalRequested {
        step: "create-key".into(),
        approval: Approval::CreateKey,
        ops: ops.clone(),
        request_id: id.into(),
    };
    log.push(at(9, 15), ADMIN, requested("r-1"));
    let waiting = StepState::WaitingForApproval { request_id: "r-1".into(), confirm: "drop-kyc-key".into() };
    assert_eq!(log.state("create-key"), waiting);
    assert_eq!(
        log.incident().prepare("create-key", &log.input(&[])),
        Err(vec![Refusal::WaitingForApproval {
            approval: Approval::CreateKey,
            request_id: "r-1".into(),
            ops: ops.clone()
        }]),
        "the step never makes the call itself: the approver does (004 §6)"
    );
    let plan = log.plan(at(9, 15));
    assert_eq!(plan.steps.iter().find(|s| s.id == "create-key").map(|s| &s.state), Some(&waiting));
    assert!(waiting.approval_text().unwrap().contains("approvals approve r-1 --confirm drop-kyc-key"));
    // A second request while r-1 is open, or another request's execution, does not fit.
    log.push(at(9, 16), ADMIN, requested("r-2"));
    log.push(at(9, 16), LEAD, executed("r-2"));
    assert_eq!(log.state("create-key"), waiting);
    let warnings = log.plan(at(9, 16)).warnings;
    assert!(warnings[0].contains("request r-1 of create-key is still open"), "{warnings:?}");
    assert!(warnings[1].contains("r-2 is not the open request"), "{warnings:?}");
    log.push(at(9, 18), LEAD, executed("r-1"));
    assert_eq!(log.state("create-key"), StepState::Done { at: at(9, 18) });

    let ops = calls(log.incident().prepare("repoint-aliases", &log.input(&[])));
    let want = Op::UpdateAlias {
        region: "eu-north-1".into(),
        alias_name: "alias/drop-kyc-key".into(),
        target_key_id: NEW_ARN.into(),
    };
    assert_eq!(ops, [want]);
    assert_eq!(
        ops[0].describe(),
        format!("kms:UpdateAlias (eu-north-1) AliasName=alias/drop-kyc-key TargetKeyId={NEW_ARN}")
    );
    let ops = calls(log.incident().prepare("enable-rotation", &StepInput::default()));
    assert_eq!(ops, [Op::EnableKeyRotation { key_id: NEW_ARN.into() }]);
}

#[test]
fn an_ended_request_shows_who_and_why_and_is_requested_again() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    let refusals = log.incident().prepare("create-key", &log.input(&[])).unwrap_err();
    let [Refusal::NeedsApproval { ops, .. }] = refusals.as_slice() else { panic!("{refusals:?}") };
    let ops = ops.clone();
    let requested = |id: &str| StepRecord::ApprovalRequested {
        step: "create-key".into(),
        approval: Approval::CreateKey,
        ops: ops.clone(),
        request_id: id.into(),
    };
    let ended = |id: &str| StepRecord::ApprovalEnded {
        step: "create-key".into(),
        request_id: id.into(),
        state: "rejected".into(),
        by: Some(LEAD.into()),
        reason: "use the backup key".into(),
    };
    log.push(at(9, 15), ADMIN, requested("r-1"));
    log.push(at(9, 16), LEAD, ended("r-1"));
    let state = log.state("create-key");
    assert_eq!(
        state,
        StepState::ApprovalEnded {
            request_id: "r-1".into(),
            outcome: "rejected".into(),
            by: Some(LEAD.into()),
            reason: "use the backup key".into()
        }
    );
    let text = state.approval_text().unwrap();
    assert!(text.contains("rejected by") && text.contains("use the backup key"), "{text}");
    assert_eq!(
        log.incident().prepare("create-key", &log.input(&[])),
        Err(vec![Refusal::NeedsApproval { approval: Approval::CreateKey, ops: ops.clone() }]),
        "requested again"
    );
    // The old request's end again does not touch the new one.
    log.push(at(9, 17), ADMIN, requested("r-2"));
    log.push(at(9, 18), LEAD, ended("r-1"));
    assert_eq!(
        log.state("create-key"),
        StepState::WaitingForApproval { request_id: "r-2".into(), confirm: "drop-kyc-key".into() }
    );
    log.push(at(9, 19), LEAD, executed("r-2"));
    assert_eq!(log.state("create-key"), StepState::Done { at: at(9, 19) });
    let ops = calls(log.incident().prepare("enable-rotation", &StepInput::default()));
    assert_eq!(
        ops,
        [Op::EnableKeyRotation { key_id: NEW_ARN.into() }],
        "the executed request's key is the replacement"
    );
}

#[test]
fn grants_are_revoked_before_a_guarded_quarantine() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    let grants = json!({"Grants": [{"GrantId": "g-1"}, {"GrantId": "g-2"}]});
    let scope = log.run("scope", at(9, 12), &[Value::Null, Value::Null, grants]);
    let Op::LookupEvents { start_time, end_time, .. } = &scope[3] else { panic!("{scope:?}") };
    assert_eq!((*start_time, *end_time), (at(9, 0) - Duration::days(30), None), "30 days before detection");
    log.run("disable", at(9, 13), &[]);
    let revoke = |g: &str| Op::RevokeGrant { key_id: KEY_ARN.into(), grant_id: g.into() };
    assert_eq!(log.run("revoke-grants", at(9, 14), &[]), [revoke("g-1"), revoke("g-2")]);
    create_replacement(&mut log, at(9, 15));

    let no_principal = StepInput { principal_arn: None, ..log.input(&[]) };
    assert_eq!(log.incident().prepare("quarantine", &no_principal), Err(vec![Refusal::NeedsPrincipal]));
    let ops = log.run("quarantine", at(9, 20), &[]);
    let [Op::ListGrants { key_id, expect_none: true }, Op::PutKeyPolicy { policy, .. }, Op::EnableKey { key_id: enabled }] =
        ops.as_slice()
    else {
        panic!("{ops:?}")
    };
    assert_eq!((key_id.as_str(), enabled.as_str()), (KEY_ARN, KEY_ARN));
    let policy: Value = serde_json::from_str(policy).unwrap();
    assert_eq!(policy.pointer("/Statement/0/Principal/AWS"), Some(&json!(LEAD)));
    let actions = policy.pointer("/Statement/0/Action").unwrap().to_string();
    assert!(actions.contains("kms:ReEncryptFrom") && !actions.contains("kms:Decrypt"), "{actions}");
    assert_eq!(policy["Statement"].as_array().unwrap().len(), 1, "no root statement: IAM grants nothing");
    assert!(log.plan(at(9, 21)).warnings.iter().any(|w| w.contains("enabled by quarantine")));

    let no_files = StepInput { files: vec![], ..log.input(&[]) };
    assert_eq!(log.incident().prepare("re-encrypt", &no_files), Err(vec![Refusal::NeedsFile]));
    assert_eq!(
        log.run("re-encrypt", at(9, 25), &[]),
        [Op::ReEncrypt {
            source_key_id: KEY_ARN.into(),
            destination_key_id: NEW_ARN.into(),
            input_file: "a.bin".into(),
            output_file: "a.bin.reencrypted".into(),
        }]
    );
    let ops = log.run("end-quarantine", at(9, 30), &[]);
    assert!(
        matches!(ops.as_slice(), [Op::DisableKey { .. }, Op::PutKeyPolicy { policy, .. }] if policy == POLICY),
        "{ops:?}"
    );
    assert!(log.plan(at(9, 31)).warnings.is_empty());

    log.run("repoint-aliases", at(9, 32), &[]);
    let ops = calls(log.incident().prepare("verify", &StepInput::default()));
    let Op::LookupEvents { start_time, .. } = &ops[4] else { panic!("{ops:?}") };
    assert_eq!(*start_time, at(9, 13), "since the disable's intent");
    assert_eq!(ops[0], Op::DescribeKey { key_id: NEW_ARN.into(), expect_key_state: Some("Enabled".into()) });
    assert_eq!(ops[1], Op::ListAliases { key_id: NEW_ARN.into(), expect_aliases: vec!["alias/drop-kyc-key".into()] });
}

/// A failed re-encryption keeps end-quarantine (DisableKey, PutKeyPolicy) from running:
/// it waits until re-encrypt is done or skipped, and a skipped re-encryption after a
/// quarantine that ran does not make end-quarantine skippable.
#[test]
fn end_quarantine_waits_for_re_encrypt() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    log.run("scope", at(9, 12), &[Value::Null, Value::Null, json!({"Grants": []})]);
    log.run("disable", at(9, 13), &[]);
    log.push(at(9, 14), LEAD, StepRecord::Acknowledged { step: "revoke-grants".into(), note: "none".into() });
    create_replacement(&mut log, at(9, 15));
    log.run("quarantine", at(9, 20), &[]);
    let blocked = |log: &Log| log.incident().prepare("end-quarantine", &log.input(&[]));
    assert_eq!(blocked(&log), Err(vec![Refusal::Blocked { by: vec!["re-encrypt".into()] }]));
    let (attempt, ops) = log.intent("re-encrypt", at(9, 21));
    let results = ops.iter().map(|op| result(op, Value::Null, Some(("keydeck.BadInput", "bad input file")))).collect();
    log.push(at(9, 21), LEAD, StepRecord::Outcome { step: "re-encrypt".into(), attempt, ok: false, results });
    assert!(matches!(log.state("re-encrypt"), StepState::Failed { .. }), "{:?}", log.state("re-encrypt"));
    assert_eq!(log.state("end-quarantine"), StepState::Blocked { by: vec!["re-encrypt".into()] });
    assert_eq!(blocked(&log), Err(vec![Refusal::Blocked { by: vec!["re-encrypt".into()] }]));
    log.skip("re-encrypt", "the file is re-encrypted by the application team");
    assert_eq!(log.incident().may_skip("end-quarantine", "x"), Err(vec![Refusal::Required]));
    assert!(matches!(calls(blocked(&log)).as_slice(), [Op::DisableKey { .. }, Op::PutKeyPolicy { .. }]));
}

#[test]
fn without_grants_revoke_grants_is_acknowledged() {
    let rb = kms();
    let mut log = Log::open(&rb, key_target(), None);
    log.run("scope", at(9, 12), &[Value::Null, Value::Null, json!({"Grants": []})]);
    log.run("disable", at(9, 13), &[]);
    let inc = log.incident();
    assert_eq!(inc.prepare("revoke-grants", &log.input(&[])), Ok(Work::Acknowledge));
    assert_eq!(inc.prepare("revoke-grants", &StepInput::default()), Err(vec![Refusal::NeedsNote]));
}

#[test]
fn jwt_rotation_follows_the_rotation_function() {
    let rb = jwt();
    let log = Log::open(&rb, secret_target(true), None);
    let ops = calls(log.incident().prepare("rotate", &log.input(&[])));
    let [Op::RotateSecret { secret_id, client_request_token, rotate_immediately: true }] = ops.as_slice() else {
        panic!("{ops:?}")
    };
    assert_eq!((secret_id.as_str(), client_request_token.len()), (SECRET_ARN, 36));
    assert_eq!(serde_json::to_value(&ops[0]).unwrap()["call"], "secretsmanager:RotateSecret");

    let mut log = Log::open(&rb, secret_target(false), None);
    assert_eq!(
        log.incident().prepare("rotate", &StepInput::default()),
        Err(vec![Refusal::NeedsConfirmation { expected: "JWT_SECRET".into() }])
    );
    let (attempt, ops) = log.intent("rotate", at(9, 12));
    let [Op::GenerateAndPutSecretValue {
        secret_id,
        client_request_token: first,
        password_length: 64,
        exclude_punctuation: true,
    }] = ops.as_slice()
    else {
        panic!("{ops:?}")
    };
    assert_eq!(secret_id, SECRET_ARN);
    assert!(ops[0].describe().contains("never shown or logged"));
    let failed = vec![result(&ops[0], Value::Null, Some(("InternalServiceError", "try later")))];
    log.push(at(9, 13), LEAD, StepRecord::Outcome { step: "rotate".into(), attempt, ok: false, results: failed });
    let again = calls(log.incident().prepare("rotate", &log.input(&[])));
    let [Op::GenerateAndPutSecretValue { client_request_token: second, .. }] = again.as_slice() else { panic!() };
    assert_ne!(first, second, "a new attempt is a new version");
    assert_eq!(first, &request_token("inc-1", "rotate", 1), "the same attempt resends the same token");

    log.run("rotate", at(9, 14), &[]);
    assert_eq!(log.plan(at(9, 15)).time_to_containment_secs, Some(4 * 60));
    let ops = calls(log.incident().prepare("verify-rotation", &StepInput::default()));
    assert_eq!(
        ops,
        [Op::DescribeSecret {
            secret_id: SECRET_ARN.into(),
            expect_rotated_from: Some("v-compromised".into()),
            expect_unstaged: None
        }]
    );
    log.run("verify-rotation", at(9, 16), &[]);
    assert_eq!(
        calls(log.incident().prepare("stage-out-previous", &log.input(&[]))),
        [Op::UpdateSecretVersionStage {
            secret_id: SECRET_ARN.into(),
            version_stage: "AWSPREVIOUS".into(),
            remove_from_version_id: "v-compromised".into()
        }]
    );
}

#[test]
fn expectations_judge_responses() {
    let describe = Op::DescribeKey { key_id: KEY_ARN.into(), expect_key_state: Some("Disabled".into()) };
    assert_eq!(describe.unmet_expectation(&json!({"KeyMetadata": {"KeyState": "Disabled"}})), None);
    assert_eq!(
        describe.unmet_expectation(&json!({"KeyMetadata": {"KeyState": "Enabled"}})).as_deref(),
        Some("KeyState is Enabled, expected Disabled")
    );
    let grants = Op::ListGrants { key_id: KEY_ARN.into(), expect_none: true };
    assert_eq!(grants.unmet_expectation(&json!({"Grants": []})), None);
    assert!(grants.unmet_expectation(&json!({"Grants": [{"GrantId": "g-9"}]})).unwrap().contains("g-9"));
    let aliases = Op::ListAliases { key_id: NEW_ARN.into(), expect_aliases: vec!["alias/a".into(), "alias/b".into()] };
    assert_eq!(
        aliases.unmet_expectation(&json!({"Aliases": [{"AliasName": "alias/a"}]})).as_deref(),
        Some("not on this key: alias/b")
    );
    let rotated = Op::DescribeSecret {
        secret_id: SECRET_ARN.into(),
        expect_rotated_from: Some("v1".into()),
        expect_unstaged: None,
    };
    assert!(rotated.unmet_expectation(&json!({"VersionIdsToStages": {"v1": ["AWSCURRENT"]}})).is_some());
    assert!(rotated
        .unmet_expectation(&json!({"VersionIdsToStages": {"v1": ["AWSCURRENT"], "v2": ["AWSPENDING"]}}))
        .is_some());
    assert!(rotated
        .unmet_expectation(&json!({"VersionIdsToStages": {"v1": ["AWSPREVIOUS"], "v2": ["AWSPENDING"]}}))
        .unwrap()
        .contains("pending"));
    assert_eq!(
        rotated.unmet_expectation(&json!({"VersionIdsToStages": {"v1": ["AWSPREVIOUS"], "v2": ["AWSCURRENT"]}})),
        None
    );
    let unstaged = Op::DescribeSecret {
        secret_id: SECRET_ARN.into(),
        expect_rotated_from: None,
        expect_unstaged: Some("v1".into()),
    };
    assert!(unstaged.unmet_expectation(&json!({"VersionIdsToStages": {"v1": ["AWSPREVIOUS"]}})).is_some());
    assert_eq!(unstaged.unmet_expectation(&json!({"VersionIdsToStages": {"v2": ["AWSCURRENT"]}})), None);
    assert_eq!(Op::DisableKey { key_id: KEY_ARN.into() }.unmet_expectation(&Value::Null), None);
}

#[test]
fn replay_refuses_a_log_of_another_incident() {
    let (k, j) = (kms(), jwt());
    assert!(Incident::replay(&k, &[]).is_err());
    let log = Log::open(&k, key_target(), None);
    let e = Incident::replay(&j, &log.records).unwrap_err();
    assert!(e.0.contains("runbook \"kms-key-compromise\""), "{e}");
    let mut wrong = Log::open(&k, secret_target(true), None);
    assert!(Incident::replay(&k, &wrong.records).unwrap_err().0.contains("target is a Secret"));
    wrong.records.remove(0);
    wrong.push(at(9, 0), LEAD, StepRecord::Skipped { step: "scope".into(), reason: "x".into() });
    assert!(Incident::replay(&k, &wrong.records).unwrap_err().0.contains("starts with step.skipped"));
}

#[test]
fn describe_makes_text_from_aws_inert() {
    let op = Op::UpdateAlias {
        region: "eu-north-1".into(),
        alias_name: "alias/x\x1b[2J".into(),
        target_key_id: NEW_ARN.into(),
    };
    assert!(!op.describe().contains('\x1b'), "{}", op.describe());
}
