//! The incident runbook under faults, through the real binary against the sandbox: the
//! process dying right after a step's intent or right after its calls (the runner's
//! failpoints), a permission the operator lacks, the endpoint gone, CloudTrail throttling,
//! the key scheduled for deletion meanwhile. After each: the log says what is known, the
//! step can be settled by reading AWS or retried, no call that took effect is made twice
//! (counted in the sandbox's CloudTrail records), and the log verifies.
//!
//! Each test works on keys of its own in a region of its own (LookupEvents is throttled per
//! region and the tests run in parallel); keydeck runs with the estate's home region first
//! (the incident-log anchor key and the incident topic live there).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sdk_cloudtrail::types::LookupAttributeKey;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;
use common::*;
use futures::StreamExt;
use keydeck::sandbox::{Sandbox, SandboxInfo, StartOptions};
use serde_json::Value;

/// The estate's home region: the anchor key and the incident topic.
const HOME: &str = "eu-north-1";
const LEAD: &str = "security-lead";
const SIGABRT: i32 = 6;

/// keydeck acting as operators on one data dir (the incident logs are shared, as on one
/// workstation), with the home region and the test's own region selected.
struct Deck {
    dir: PathBuf,
    regions: String,
    sandbox: Option<SandboxInfo>,
}

impl Deck {
    fn new(tag: &str, region: &str) -> Self {
        Self { dir: temp_dir(tag), regions: format!("{HOME},{region}"), sandbox: None }
    }

    fn cmd(&self, who: &str, args: &[&str]) -> Command {
        let mut c = match &self.sandbox {
            None => keydeck_as(who, &self.dir, &self.regions),
            Some(info) => keydeck_on(info, who, &self.dir, &self.regions),
        };
        c.arg("--allow-write").args(args);
        c
    }

    fn run(&self, who: &str, args: &[&str]) -> Output {
        self.cmd(who, args).output().expect("run keydeck")
    }

    /// Run; it must succeed: its stdout.
    #[track_caller]
    fn ok(&self, who: &str, args: &[&str]) -> String {
        let out = self.run(who, args);
        assert!(
            out.status.success(),
            "keydeck {args:?} as {who}: {:?}\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `incident run ID --step STEP ARGS --format json` as the security lead: the step report.
    #[track_caller]
    fn step(&self, id: &str, step: &str, extra: &[&str]) -> Value {
        let mut args = vec!["incident", "run", id, "--step", step, "--format", "json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.ok(LEAD, &args)).expect("a JSON step report")
    }

    fn open(&self, who: &str, key: &str) -> String {
        self.ok(who, &["incident", "start", "--key", key, "--reason", "fault test: key material seen in a log"])
            .trim()
            .to_owned()
    }

    /// The state of `step` (`incident status --format json`): done, failed, unknown, ...
    fn state(&self, id: &str, step: &str) -> Value {
        let plan: Value =
            serde_json::from_str(&self.ok(LEAD, &["incident", "status", id, "--format", "json"])).expect("JSON");
        let s = plan["steps"].as_array().expect("steps").iter().find(|s| s["id"] == step).expect("the step").clone();
        s["state"].clone()
    }

    fn attempts(&self, id: &str, step: &str) -> u64 {
        let plan: Value =
            serde_json::from_str(&self.ok(LEAD, &["incident", "status", id, "--format", "json"])).expect("JSON");
        let s = plan["steps"].as_array().expect("steps").iter().find(|s| s["id"] == step).expect("the step").clone();
        s["attempts"].as_u64().expect("attempts")
    }

    /// The line of `step` in `incident status`'s table.
    fn status_line(&self, id: &str, step: &str) -> String {
        let table = self.ok(LEAD, &["incident", "status", id]);
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(step))
            .unwrap_or_else(|| panic!("{step} in {table}"))
            .to_owned()
    }

    /// `incident verify ID` (offline: the hash chain) and `--online` (each anchor with kms:Verify).
    fn verifies(&self, id: &str) {
        let out = self.ok(LEAD, &["incident", "verify", id]);
        assert!(out.contains("verify"), "{out}");
        let online: Value =
            serde_json::from_str(&self.ok(LEAD, &["incident", "verify", id, "--online", "--format", "json"]))
                .expect("JSON");
        assert_eq!(online["intact"], true, "{online}");
        assert!(online["anchors"].as_array().is_some_and(|a| !a.is_empty()), "{online}");
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.dir.join("data").join("incidents").join(format!("{id}.jsonl"))
    }

    /// The key-admin runs create-key, which proposes the replacement through the approvals
    /// store (004 §6: a key-admin proposes): the request id the log names.
    #[track_caller]
    fn propose_replacement(&self, id: &str) -> String {
        let args = ["incident", "run", id, "--step", "create-key", "--format", "json"];
        let asked: Value = serde_json::from_str(&self.ok("key-admin", &args)).expect("a JSON step report");
        assert_eq!(asked["result"], "approval_requested", "{asked}");
        self.request_ids(id).pop().expect("approval.requested in the log")
    }

    /// The request ids of the log's `approval.requested` records, in order.
    fn request_ids(&self, id: &str) -> Vec<String> {
        std::fs::read_to_string(self.log_path(id))
            .expect("the incident log")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["kind"] == "approval.requested")
            .filter_map(|e| e["body"]["request_id"].as_str().map(str::to_owned))
            .collect()
    }

    /// The security lead (the CISO) approves `request`, typing `alias`, asked again while
    /// CloudTrail has not attested the proposer (exit 8), with a deadline: CreateKey runs
    /// under the security lead's credentials.
    #[track_caller]
    fn approve(&self, request: &str, alias: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.run(LEAD, &["approvals", "approve", request, "--confirm", alias]);
            if out.status.success() {
                return;
            }
            assert_eq!(out.status.code(), Some(8), "approve {request}: {}", text(&out.stderr));
            assert!(Instant::now() < deadline, "CloudTrail did not attest the proposer of {request} in 30 s");
            std::thread::sleep(Duration::from_millis(500)); // poll interval, not synchronisation
        }
    }

    /// The approvals store's requests whose reason names incident `id` (`approvals list`).
    fn stored_requests(&self, id: &str) -> Vec<Value> {
        let listed: Value =
            serde_json::from_str(&self.ok(LEAD, &["approvals", "list", "--format", "json"])).expect("JSON");
        ["waiting_for_me", "mine", "open", "history"]
            .iter()
            .flat_map(|k| listed[*k].as_array().cloned().unwrap_or_default())
            .filter(|r| r["request"]["reason"].as_str().is_some_and(|t| t.contains(id)))
            .collect()
    }
}

/// keydeck acting as `operator` of another sandbox (as [`keydeck_as`] does for the shared one).
fn keydeck_on(info: &SandboxInfo, operator: &str, dir: &Path, regions: &str) -> Command {
    let op = info.operator(operator).expect("seeded operator");
    let mut c = Command::new(env!("CARGO_BIN_EXE_keydeck"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "KEYDECK_REGIONS" {
            c.env_remove(k);
        }
    }
    c.env("HOME", dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", &op.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &op.secret_access_key)
        .env("AWS_ENDPOINT_URL", &info.endpoint)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--region")
        .arg(regions);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stderr is exactly one line (no panic): that line.
#[track_caller]
fn one_line(out: &Output) -> String {
    let s = text(&out.stderr);
    assert!(!s.contains("panicked"), "panic: {s}");
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {s}");
    lines[0].to_owned()
}

async fn kms(who: &str, region: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&config_in(&context(who).await, region))
}

/// A key of the test's own with an alias (`alias/NAME`), made by `who` (the security lead
/// and the key-admin may CreateKey and CreateAlias): its ARN.
async fn throwaway_key(who: &str, region: &str, name: &str) -> String {
    let k = kms(who, region).await;
    let md = k.create_key().description(format!("fault test: {name}")).send().await.expect("CreateKey");
    let md = md.key_metadata().expect("metadata");
    k.create_alias().alias_name(format!("alias/{name}")).target_key_id(md.key_id()).send().await.expect("CreateAlias");
    md.arn().expect("ARN").to_owned()
}

/// Data encrypted under the key before the incident (by the application): a file of base64
/// CiphertextBlobs, one a line, and the plaintexts.
async fn ciphertext_file(dir: &Path, region: &str, alias: &str, n: usize) -> (PathBuf, Vec<String>) {
    let app = kms("app-encrypt", region).await;
    let (mut lines, mut plain) = (String::new(), Vec::new());
    for i in 0..n {
        let p = format!("dek-{i}-of-{alias}");
        let out = app
            .encrypt()
            .key_id(format!("alias/{alias}"))
            .plaintext(Blob::new(p.clone()))
            .send()
            .await
            .expect("Encrypt");
        lines.push_str(&aws_smithy_types::base64::encode(out.ciphertext_blob().expect("blob").as_ref()));
        lines.push('\n');
        plain.push(p);
    }
    let path = dir.join("deks.b64");
    std::fs::write(&path, lines).expect("write the ciphertexts");
    (path, plain)
}

/// The sandbox's CloudTrail records of successful `event` calls by `user` that `pred` accepts.
async fn calls(event: &str, user: &str, pred: impl Fn(&Value) -> bool) -> usize {
    trail_records()
        .await
        .iter()
        .filter(|r| r["eventName"] == event && r["userIdentity"]["userName"] == user && r["errorCode"].is_null())
        .filter(|r| pred(r))
        .count()
}

fn names_key(r: &Value, arn: &str) -> bool {
    r["resources"].as_array().is_some_and(|a| a.iter().any(|x| x["ARN"] == arn))
}

// ---- crashes

/// Run `step` with the failpoint: the process aborts; the status says OUTCOME UNKNOWN; the
/// next run settles by reading AWS (answer `settled`), and when not done the run after
/// makes the step. Answers the settling run's result.
fn crash_and_recover(deck: &Deck, id: &str, step: &str, extra: &[&str], at: &str) -> String {
    let mut args = vec!["incident", "run", id, "--step", step];
    args.extend_from_slice(extra);
    let out = deck.cmd(LEAD, &args).env("KEYDECK_FAILPOINT", format!("{step}:{at}")).output().expect("run keydeck");
    assert!(!out.status.success(), "{step}:{at} did not stop the process: {}", text(&out.stdout));
    assert_eq!(out.status.signal(), Some(SIGABRT), "{step}:{at}: {:?} {}", out.status, text(&out.stderr));
    let line = deck.status_line(id, step);
    assert!(line.contains("OUTCOME UNKNOWN (attempt "), "{step}:{at}: {line}");
    assert_eq!(deck.state(id, step)["state"], "unknown");

    let settled = deck.step(id, step, extra);
    let result = settled["result"].as_str().expect("result").to_owned();
    assert!(result == "settled_done" || result == "settled_not_done", "{step}:{at}: {settled}");
    if result == "settled_not_done" {
        assert_eq!(deck.state(id, step)["state"], "failed", "{step}:{at}: settled not done");
        let again = deck.step(id, step, extra);
        assert_eq!(again["result"], "done", "{step}:{at}: the next run does it: {again}");
    }
    assert_eq!(deck.state(id, step)["state"], "done", "{step}:{at}");
    result
}

/// Every AWS-calling step of the KMS runbook, each crashed at `at` and recovered; counts
/// of each changing call, as CloudTrail recorded them, after each step.
async fn crash_through_the_runbook(at: &str, region: &str, name: &str) {
    let deck = Deck::new(name, region);
    let old = throwaway_key(LEAD, region, name).await;
    let (deks, plaintexts) = ciphertext_file(&deck.dir, region, name, 5).await;
    let deks = deks.display().to_string();
    let id = deck.open(LEAD, name);
    let after_calls = at == "after-calls";
    // What settling finds: a changing call whose effect is visible in AWS is done and never
    // made again; reads (scope, verify), a notification and a re-encryption (which resumes
    // from its output file) are made again.
    let expect = |step: &str, settled: &str| {
        let visible = after_calls
            && matches!(
                step,
                "disable" | "create-key" | "enable-rotation" | "repoint-aliases" | "quarantine" | "end-quarantine"
            );
        assert_eq!(settled, if visible { "settled_done" } else { "settled_not_done" }, "{step}:{at}");
    };
    let crash = |step: &str, extra: &[&str]| expect(step, &crash_and_recover(&deck, &id, step, extra, at));

    crash("notify", &[]);
    let published = calls("Publish", LEAD, |r| r.to_string().contains(&id)).await;
    // Publishing is not observable: after-calls, the notification goes out a second time.
    assert_eq!(published, if after_calls { 2 } else { 1 }, "Publish");

    crash("scope", &[]);
    crash("disable", &["--confirm", name]);
    assert_eq!(calls("DisableKey", LEAD, |r| names_key(r, &old)).await, 1, "DisableKey");

    // The replacement is the approver's call, through the approvals store (a crash around
    // its request: `a_crash_around_the_replacement_request_…`).
    let request = deck.propose_replacement(&id);
    deck.approve(&request, name);
    let made = deck.step(&id, "create-key", &[]);
    assert_eq!(made["result"], "done", "{made}");
    let created: Vec<Value> = trail_records()
        .await
        .into_iter()
        .filter(|r| r["eventName"] == "CreateKey" && r["userIdentity"]["userName"] == LEAD && r["errorCode"].is_null())
        .filter(|r| r["requestParameters"].to_string().contains(&id))
        .collect();
    assert_eq!(created.len(), 1, "one CreateKey with the incident's tags: {created:?}");
    let new = created[0]["responseElements"]["keyMetadata"]["arn"].as_str().expect("the replacement's ARN").to_owned();

    crash("enable-rotation", &[]);
    assert_eq!(calls("EnableKeyRotation", LEAD, |r| names_key(r, &new)).await, 1, "EnableKeyRotation");
    crash("repoint-aliases", &["--confirm", name]);
    let alias = format!("alias/{name}");
    assert_eq!(calls("UpdateAlias", LEAD, |r| r["requestParameters"]["aliasName"] == alias.as_str()).await, 1);

    // No operator may CreateGrant (004 §6: Security Lead and system owner together), so
    // there are no grants: the step is an acknowledgement, with nothing to crash.
    let ack = deck.step(&id, "revoke-grants", &["--confirm", name, "--note", "ListGrants in scope: none"]);
    assert_eq!(ack["result"], "acknowledged", "{ack}");

    crash("quarantine", &["--confirm", name]);
    assert_eq!(calls("PutKeyPolicy", LEAD, |r| names_key(r, &old)).await, 1, "PutKeyPolicy (quarantine)");
    assert_eq!(calls("EnableKey", LEAD, |r| names_key(r, &old)).await, 1, "EnableKey");

    crash("re-encrypt", &["--file", &deks]);
    let reencrypted = calls("ReEncrypt", LEAD, |r| names_key(r, &old)).await;
    assert_eq!(reencrypted, plaintexts.len(), "each ciphertext re-encrypted once");
    let out = std::fs::read_to_string(format!("{deks}.reencrypted")).expect("the output file");
    assert_eq!(out.lines().count(), plaintexts.len(), "{out}");
    let decrypter = kms("compliance-decrypt", region).await;
    for (line, want) in out.lines().zip(&plaintexts) {
        let blob = aws_smithy_types::base64::decode(line).expect("base64");
        let d = decrypter.decrypt().ciphertext_blob(Blob::new(blob)).send().await.expect("Decrypt the new blob");
        assert_eq!(d.key_id(), Some(new.as_str()), "under the replacement");
        assert_eq!(d.plaintext().map(|p| p.as_ref()), Some(want.as_bytes()));
    }

    crash("end-quarantine", &[]);
    assert_eq!(calls("DisableKey", LEAD, |r| names_key(r, &old)).await, 2, "DisableKey (disable, end-quarantine)");
    assert_eq!(calls("PutKeyPolicy", LEAD, |r| names_key(r, &old)).await, 2, "PutKeyPolicy (quarantine, restore)");
    crash("verify", &[]);

    // Nothing lost: every AWS-calling step done, the old key disabled, the alias on the new.
    for step in [
        "notify",
        "scope",
        "disable",
        "create-key",
        "enable-rotation",
        "repoint-aliases",
        "revoke-grants",
        "quarantine",
        "re-encrypt",
        "end-quarantine",
        "verify",
    ] {
        assert_eq!(deck.state(&id, step)["state"], "done", "{step}");
    }
    let lead = kms(LEAD, region).await;
    let old_md = lead.describe_key().key_id(&old).send().await.expect("DescribeKey");
    assert_eq!(old_md.key_metadata().and_then(|m| m.key_state()), Some(&KeyState::Disabled));
    let now = lead.describe_key().key_id(&alias).send().await.expect("DescribeKey alias");
    assert_eq!(now.key_metadata().and_then(|m| m.arn()), Some(new.as_str()));
    deck.verifies(&id);

    // CloudTrail's own view (LookupEvents, as an auditor would read it): one CreateKey for
    // the incident, by the security lead.
    let ct = cloudtrail_client(&context("key-auditor").await, region);
    let q = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::EventName, "CreateKey"));
    let of_incident =
        |r: &Value| r["requestParameters"].to_string().contains(&id) && r["userIdentity"]["userName"] == LEAD;
    wait_for_event(q.clone(), "the replacement's CreateKey", |_, r| of_incident(r)).await;
    assert_eq!(all_events(q).await.iter().filter(|e| of_incident(&record(e))).count(), 1);
}

/// The replacement's request is named in the log before the store has it, and the store
/// is searched before a new one is proposed: a crash at either point, a re-run, or a log
/// restored from a copy older than the request never makes a second request or a second
/// key.
#[tokio::test]
async fn a_crash_around_the_replacement_request_makes_one_request_and_one_key() {
    let (region, name) = ("ap-south-1", "faults-crash-request");
    let deck = Deck::new(name, region);
    throwaway_key(LEAD, region, name).await;
    let id = deck.open(LEAD, name);
    let crash_as_admin = |at: &str| {
        let args = ["incident", "run", id.as_str(), "--step", "create-key"];
        let out = deck.cmd("key-admin", &args).env("KEYDECK_FAILPOINT", format!("create-key:{at}")).output();
        let out = out.expect("run keydeck");
        assert_eq!(out.status.signal(), Some(SIGABRT), "create-key:{at}: {:?} {}", out.status, text(&out.stderr));
    };
    let run_as_admin = |result: &str| {
        let args = ["incident", "run", id.as_str(), "--step", "create-key", "--format", "json"];
        let v: Value = serde_json::from_str(&deck.ok("key-admin", &args)).expect("a JSON step report");
        assert_eq!(v["result"], result, "{v}");
        v
    };

    // Killed after the log named the request, before the store had it: the step waits for
    // that request; the next run stores it under the same id.
    crash_as_admin("after-approval-requested");
    let named = deck.request_ids(&id);
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(deck.state(&id, "create-key")["state"], "waiting_for_approval");
    let r = deck.run(LEAD, &["approvals", "show", &named[0]]);
    assert_eq!(r.status.code(), Some(2), "not in the store yet: {}", text(&r.stderr));
    assert!(deck.stored_requests(&id).is_empty());
    let v = run_as_admin("approval_requested");
    assert!(v["detail"].as_str().is_some_and(|d| d.contains(&named[0]) && d.contains("stored now")), "{v}");
    run_as_admin("waiting_for_approval");
    let stored = deck.stored_requests(&id);
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0]["id"], named[0].as_str());
    assert_eq!(deck.request_ids(&id), named, "no second request in the log");

    // The request withdrawn; the next one killed after the store had it: the re-run waits
    // for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !deck.run("key-admin", &["approvals", "withdraw", &named[0]]).status.success() {
        assert!(Instant::now() < deadline, "withdraw {} refused for 30 s", named[0]);
        std::thread::sleep(Duration::from_millis(500)); // poll interval, not synchronisation
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let args = ["incident", "run", id.as_str(), "--step", "create-key"];
        let out = deck.run("key-admin", &args);
        if out.status.code() == Some(7) {
            assert!(text(&out.stderr).contains("withdrawn"), "{}", text(&out.stderr));
            break;
        }
        assert!(Instant::now() < deadline, "the withdrawal not attested in 30 s: {}", text(&out.stdout));
        std::thread::sleep(Duration::from_millis(500)); // poll interval, not synchronisation
    }
    let before_request = std::fs::read(deck.log_path(&id)).expect("log");
    let head = deck.log_path(&id).with_extension("head");
    let before_head = std::fs::read(&head).expect("head");
    crash_as_admin("after-propose");
    let second = deck.request_ids(&id).pop().expect("the second request");
    assert_ne!(second, named[0]);
    run_as_admin("waiting_for_approval");
    assert_eq!(deck.stored_requests(&id).len(), 2);

    // The log restored from a copy taken before the second request: the store's open
    // request for this incident and step is found and adopted, not proposed again.
    std::fs::write(deck.log_path(&id), &before_request).expect("restore the log");
    std::fs::write(&head, &before_head).expect("restore the head");
    assert_eq!(deck.state(&id, "create-key")["state"], "approval_ended");
    let v = run_as_admin("approval_requested");
    assert!(v["detail"].as_str().is_some_and(|d| d.contains(&second) && d.contains("found in the store")), "{v}");
    assert_eq!(deck.request_ids(&id).pop(), Some(second.clone()));
    assert_eq!(deck.stored_requests(&id).len(), 2, "no third request");

    // Approved once, recorded once: one CreateKey, by the approver.
    deck.approve(&second, name);
    let done = deck.step(&id, "create-key", &[]);
    assert_eq!(done["result"], "done", "{done}");
    let again = deck.run(LEAD, &["incident", "run", &id, "--step", "create-key"]);
    assert_eq!(again.status.code(), Some(9), "already done: {}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("refused: create-key: already done"),
        "names the step: {}",
        text(&again.stderr)
    );
    let made = calls("CreateKey", LEAD, |r| r["requestParameters"].to_string().contains(&id)).await;
    assert_eq!(made, 1, "one replacement key");
    assert_eq!(calls("CreateKey", "key-admin", |r| r["requestParameters"].to_string().contains(&id)).await, 0);
    deck.verifies(&id);
}

#[tokio::test]
async fn every_step_survives_a_crash_right_after_its_intent() {
    crash_through_the_runbook("after-intent", "eu-central-1", "faults-crash-intent").await;
}

#[tokio::test]
async fn every_step_survives_a_crash_right_after_its_calls() {
    crash_through_the_runbook("after-calls", "eu-west-3", "faults-crash-calls").await;
}

// ---- refusals

#[tokio::test]
async fn a_denied_step_is_one_line_exit_4_recorded_and_retryable_by_someone_allowed() {
    let region = "eu-south-1";
    let name = "faults-denied";
    let deck = Deck::new(name, region);
    // The key-admin's own key and incident; it may not DisableKey (004 §6: the Security Lead's).
    let arn = throwaway_key("key-admin", region, name).await;
    let id = deck.open("key-admin", name);
    let out = deck.run("key-admin", &["incident", "run", &id, "--step", "disable", "--confirm", name]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let line = one_line(&out);
    assert!(line.contains("kms:DisableKey") && line.contains(&arn) && line.contains("access denied"), "{line}");
    let state = deck.state(&id, "disable");
    assert_eq!(state["state"], "failed", "{state}");
    assert!(state["error"].as_str().is_some_and(|e| e.contains("AccessDeniedException")), "{state}");
    assert!(deck.status_line(&id, "disable").contains("FAILED (attempt 1)"));
    assert_eq!(
        kms(LEAD, region)
            .await
            .describe_key()
            .key_id(&arn)
            .send()
            .await
            .expect("DescribeKey")
            .key_metadata()
            .and_then(|m| m.key_state()),
        Some(&KeyState::Enabled)
    );

    // The key-admin's process has exited (its lock with it): the security lead retries.
    let done = deck.step(&id, "disable", &["--confirm", name]);
    assert_eq!(done["result"], "done", "{done}");
    assert_eq!(deck.state(&id, "disable")["state"], "done");
    assert_eq!(calls("DisableKey", LEAD, |r| names_key(r, &arn)).await, 1);
    let refused = trail_records()
        .await
        .into_iter()
        .filter(|r| {
            r["eventName"] == "DisableKey" && r["userIdentity"]["userName"] == "key-admin" && names_key(r, &arn)
        })
        .collect::<Vec<_>>();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["errorCode"], "AccessDenied");
    deck.verifies(&id);

    // The outsider cannot even open one: one line, exit 4, nothing written.
    let outsider = Deck::new("faults-outsider", region);
    let out = outsider.run("outsider", &["incident", "start", "--key", name, "--reason", "spoofed"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let line = one_line(&out);
    assert!(line.contains("kms:DescribeKey") && line.contains("access denied"), "{line}");
    let list = outsider.ok(LEAD, &["incident", "list"]);
    assert!(list.trim().is_empty(), "no incident: {list}");
}

#[tokio::test]
async fn a_key_scheduled_for_deletion_meanwhile_fails_disable_with_kms_invalid_state() {
    let region = "ca-central-1";
    let name = "faults-deleted";
    let deck = Deck::new(name, region);
    let arn = throwaway_key(LEAD, region, name).await;
    let id = deck.open(LEAD, name);
    let lead = kms(LEAD, region).await;
    lead.schedule_key_deletion().key_id(&arn).pending_window_in_days(7).send().await.expect("ScheduleKeyDeletion");

    let out = deck.run(LEAD, &["incident", "run", &id, "--step", "disable", "--confirm", name]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let line = one_line(&out);
    assert!(
        line.contains("KMSInvalidStateException") && line.contains(&format!("{arn} is pending deletion.")),
        "{line}"
    );
    assert!(line.starts_with("keydeck: step disable failed: kms:DisableKey"), "{line}");
    let state = deck.state(&id, "disable");
    assert_eq!(state["state"], "failed", "{state}");
    // The refused call changed nothing: the deletion stands.
    let md = lead.describe_key().key_id(&arn).send().await.expect("DescribeKey");
    assert_eq!(md.key_metadata().and_then(|m| m.key_state()), Some(&KeyState::PendingDeletion));

    // Retry possible: cancelled, the key is Disabled (as in KMS) and DisableKey succeeds.
    lead.cancel_key_deletion().key_id(&arn).send().await.expect("CancelKeyDeletion");
    let done = deck.step(&id, "disable", &["--confirm", name]);
    assert_eq!(done["result"], "done", "{done}");
    assert_eq!(deck.attempts(&id, "disable"), 2);
    deck.verifies(&id);
}

// ---- the endpoint gone

#[tokio::test]
async fn a_stopped_sandbox_fails_the_step_as_unreachable_and_nothing_is_done() {
    let sandbox =
        Sandbox::start(&temp_dir("faults-sandbox2"), &StartOptions::default()).await.expect("a second sandbox");
    let info = sandbox.info.clone();
    let mut deck = Deck::new("faults-outage", HOME);
    deck.regions = HOME.to_owned();
    deck.sandbox = Some(info.clone());
    let id = deck.open(LEAD, "drop-kyc-key");
    let scope = deck.step(&id, "scope", &[]);
    assert_eq!(scope["result"], "done", "{scope}");

    sandbox.stop().await;
    let hostport = info.endpoint.trim_start_matches("http://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&hostport).is_ok() {
        assert!(Instant::now() < deadline, "the stopped sandbox still accepts connections");
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }

    let out = deck.run(LEAD, &["incident", "run", &id, "--step", "disable", "--confirm", "drop-kyc-key"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let line = one_line(&out);
    assert!(line.contains("endpoint unreachable"), "{line}");
    // Nothing recorded as done (nothing recorded at all: no intent without a connection).
    assert_eq!(deck.state(&id, "disable")["state"], "pending");
    assert_eq!(deck.state(&id, "scope")["state"], "done");
    let log = std::fs::read_to_string(deck.log_path(&id)).expect("the log");
    assert!(!log.contains("\"disable\""), "no disable record: {log}");
    let out = deck.ok(LEAD, &["incident", "verify", &id]);
    assert!(out.contains("verify"), "{out}");
}

// ---- throttling

/// The shared sandbox's log (beside its CloudTrail file): the proxy logs each call as
/// `ACTION ACCESS-KEY-ID from ADDRESS -> STATUS`.
async fn sandbox_log() -> PathBuf {
    trail_file().await.with_file_name("sandbox.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_completes_while_another_process_hammers_lookup_events() {
    // The key-admin runs this incident (it may read everything scope reads, and sign the
    // anchor): no other test here calls LookupEvents as the key-admin, so its throttled
    // calls in the sandbox's log are this scope's.
    let (region, name, who) = ("eu-west-2", "faults-throttled", "key-admin");
    let deck = Deck::new(name, region);
    let arn = throwaway_key(who, region, name).await;
    // Three pages (50 events each) of CloudTrail on the key: its DescribeKey calls.
    let admin = kms(who, region).await;
    let describe = |_| admin.describe_key().key_id(&arn).send();
    let made: Vec<_> = futures::stream::iter(0..110).map(describe).buffer_unordered(8).collect().await;
    assert!(made.iter().all(Result::is_ok), "DescribeKey");
    let id = deck.open(who, name);
    let throttled_mark =
        format!("cloudtrail:LookupEvents {} from ", sandbox().operator(who).expect("seeded").access_key_id);
    let log = sandbox_log().await;
    let seen_before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&throttled_mark) && l.contains("-> 400"))
        .count();

    // The hammer: the key-auditor's LookupEvents in the same region, back to back, until the
    // sandbox has refused one of scope's (or a deadline): then scope gets through.
    let auditor = context("key-auditor").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, throttled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut hammers = Vec::new();
    for _ in 0..3 {
        // No SDK retries: every request is one LookupEvents at the sandbox.
        let conf = aws_sdk_cloudtrail::config::Builder::from(&config_in(&auditor, region))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let ct = aws_sdk_cloudtrail::Client::from_conf(conf);
        let (stop, sent, throttled) = (stop.clone(), sent.clone(), throttled.clone());
        hammers.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            for _ in 0..20_000 {
                if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                    return;
                }
                let r = ct.lookup_events().max_results(1).send().await;
                sent.fetch_add(1, Ordering::SeqCst);
                if r.as_ref().err().and_then(|e| e.code()) == Some("ThrottlingException") {
                    throttled.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let watcher = {
        let (stop, mark) = (stop.clone(), throttled_mark.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.lines().filter(|l| l.contains(&mark) && l.contains("-> 400")).count() > seen_before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    let started = Instant::now();
    let out =
        tokio::process::Command::from(deck.cmd(who, &["incident", "run", &id, "--step", "scope", "--format", "json"]))
            .output()
            .await
            .expect("run keydeck");
    stop.store(true, Ordering::SeqCst);
    watcher.await.expect("watcher");
    for h in hammers {
        h.await.expect("hammer");
    }
    assert!(out.status.success(), "scope under throttling: {}{}", text(&out.stdout), text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["result"], "done", "{report}");
    let results = report["results"].as_array().expect("results");
    let lookup = results.iter().find(|r| r["call"] == "cloudtrail:LookupEvents").expect("LookupEvents");
    let calls_made = lookup["fields"]["Calls"].as_u64().expect("Calls");
    let retried = lookup["fields"]["Throttled"].as_u64().expect("Throttled");
    assert!(throttled.load(Ordering::SeqCst) > 0, "the region was throttled ({} sent)", sent.load(Ordering::SeqCst));
    assert!(retried >= 1, "scope met the throttle and retried: {lookup}");
    assert!(calls_made >= 3 + retried, "three pages, plus the retries: {lookup}");
    let scope = &lookup["fields"]["Scope"];
    assert!(scope.to_string().contains(who), "the key-admin's DescribeKey calls are in scope: {scope}");
    eprintln!(
        "scope: {calls_made} LookupEvents calls, {retried} throttled, {:?}; hammer sent {}, throttled {}",
        started.elapsed(),
        sent.load(Ordering::SeqCst),
        throttled.load(Ordering::SeqCst)
    );
    // The same numbers are in the log's outcome record.
    let log = std::fs::read_to_string(deck.log_path(&id)).expect("log");
    assert!(log.contains(&format!("\"Throttled\":{retried}")), "the log records Throttled");
    deck.verifies(&id);
}
