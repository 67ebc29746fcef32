//! Dual approval end to end (issue 11): `keydeck approvals …` through the real binary,
//! as the sandbox's key-admin (proposer) and security lead (the CISO, approver), against
//! one sandbox. What keydeck claims is checked through the SDK (ListKeyRotations,
//! DescribeKey) and CloudTrail.
//!
//! Each test works on its own key: drop-national-id-key (the happy path), keys it creates
//! itself (the race, a key deleted meanwhile, a cancelled deletion), drop-backup-key in eu-west-1 (region not
//! selected), drop-kyc-key (refusals that never run anything).
//!
//! The key-admin's second access key and sessions of his role drop-key-admin are seeded by
//! the sandbox (estate: `second_access_key`, `assumable_role`; no operator may mint keys or
//! roles itself), so the same-principal refusals run end to end too (drop-kyc-key).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::types::LookupAttributeKey;
use aws_sdk_kms::error::ProvideErrorMetadata;
use chrono::Utc;
use common::*;
use keydeck::aws::approvals as store;
use keydeck::domain::approval::{NewRequest, Operation, Request};
use keydeck::domain::identity::CallerIdentity;
use keydeck::domain::policy::ApprovalMatrix;
use keydeck::runtime::approvals as flow;
use serde_json::Value;

const REGION: &str = "eu-north-1";

/// keydeck runs as any operator, each operator with its own data dir (two machines).
struct Deck {
    dir: PathBuf,
}

impl Deck {
    fn new(tag: &str) -> Self {
        sandbox();
        Self { dir: temp_dir(tag) }
    }

    fn command(&self, who: &str, regions: &str, args: &[&str]) -> std::process::Command {
        let home = self.dir.join(who);
        std::fs::create_dir_all(&home).expect("home");
        let mut c = keydeck_as(who, &home, regions);
        c.arg("--allow-write").args(args);
        c
    }

    fn run_in(&self, who: &str, regions: &str, args: &[&str]) -> Ran {
        Ran::of(self.command(who, regions, args), format!("{who}: keydeck {}", args.join(" ")))
    }

    fn run(&self, who: &str, args: &[&str]) -> Ran {
        self.run_in(who, REGION, args)
    }

    fn propose(&self, op: &str, key: &str, extra: &[&str]) -> String {
        let mut args = vec!["approvals", "propose", op, "--key", key, "--reason", "rotation is due"];
        args.extend_from_slice(extra);
        let id = self.run_in("key-admin", "eu-north-1,eu-west-1", &args).ok().stdout.trim().to_owned();
        assert_eq!(id.len(), 24, "a request id: {id:?}");
        id
    }

    /// Wait (with a deadline) until CloudTrail attests the key-admin as the proposer of `id`.
    fn attested(&self, id: &str) {
        self.attested_as(id, &op_arn("key-admin"))
    }

    fn journal(&self, who: &str) -> Vec<Value> {
        let p =
            self.dir.join(who).join("data").join("journal").join(format!("approvals-{}.jsonl", sandbox().account_id));
        std::fs::read_to_string(&p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("journal line"))
            .collect()
    }
}

fn op_arn(who: &str) -> String {
    sandbox().operator(who).expect("operator").arn.clone()
}

async fn kms(who: &str, region: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&config_in(&context(who).await, region))
}

/// The ARN of the key `alias/<alias>` in REGION.
async fn key_arn(alias: &str) -> String {
    let d = kms("key-auditor", REGION).await.describe_key().key_id(format!("alias/{alias}")).send().await;
    d.expect("DescribeKey").key_metadata.and_then(|m| m.arn).expect("the key's ARN")
}

async fn on_demand_rotations(key: &str) -> usize {
    let out = kms("key-auditor", REGION).await.list_key_rotations().key_id(key).send().await.expect("ListKeyRotations");
    out.rotations().iter().filter(|r| r.rotation_type().map(|t| t.as_str()) == Some("ON_DEMAND")).count()
}

/// A fresh key with an alias, made by the key-admin.
async fn fresh_key(alias: &str) -> String {
    let k = kms("key-admin", REGION).await;
    let arn = k
        .create_key()
        .description("approvals test")
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .expect("m")
        .arn
        .expect("arn");
    k.create_alias().alias_name(format!("alias/{alias}")).target_key_id(&arn).send().await.expect("CreateAlias");
    arn
}

/// Every CloudTrail record of `event` on `key` in eu-north-1.
async fn trail_calls(event: &str, key_arn: &str) -> Vec<Value> {
    let ct = cloudtrail_client(&context("key-auditor").await, REGION);
    let q = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::EventName, event)).max_results(50);
    all_events(q)
        .await
        .iter()
        .map(record)
        .filter(|r| r["errorCode"].is_null() && r.to_string().contains(key_arn))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_admin_proposes_the_security_lead_approves_and_runs_it_as_himself() {
    let started = Instant::now();
    let deck = Deck::new("approve");
    let key = "drop-national-id-key";
    let arn = key_arn(key).await;
    let before = on_demand_rotations(&arn).await;

    // IAM denies the key-admin the call itself.
    let direct = kms("key-admin", REGION).await.rotate_key_on_demand().key_id(&arn).send().await;
    assert_eq!(direct.expect_err("IAM denies").code(), Some("AccessDeniedException"));

    // The policy refuses a 3-day deletion window at proposal.
    deck.run_in(
        "key-admin",
        REGION,
        &["approvals", "propose", "schedule-deletion", "--key", key, "--window-days", "3", "--reason", "x"],
    )
    .fails(9, "3-day deletion window is shorter than the policy allows");
    // Read-only without --allow-write.
    let mut ro = keydeck_as("key-admin", &deck.dir.join("ro"), REGION);
    let out = ro.args(["approvals", "withdraw", "20000101-000000-deadbeef"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));

    let id = deck.propose("rotate-key", key, &[]);
    deck.attested(&id);
    // The listing as the lead: waiting for him; as the key-admin: his own.
    let l = deck.run("security-lead", &["approvals", "list", "--format", "json"]).ok().json();
    assert!(l["waiting_for_me"].as_array().expect("list").iter().any(|v| v["id"] == id.as_str()), "{l:#}");
    let l = deck.run("key-admin", &["approvals", "list", "--format", "json"]).ok().json();
    assert!(l["mine"].as_array().expect("list").iter().any(|v| v["id"] == id.as_str()), "{l:#}");

    // The daily review lists it: for the lead as waiting for him, with the key by alias.
    let review = deck.run("security-lead", &["review", "--format", "json"]).ok().json();
    let open = review["open_approval_requests"].as_array().expect("open requests");
    let r = open.iter().find(|r| r["id"] == id.as_str()).unwrap_or_else(|| panic!("{id} not in {open:#?}"));
    assert_eq!((r["operation"].as_str(), r["target"].as_str()), (Some("rotate-key"), Some(key)));
    assert_eq!((r["target_arn"].as_str(), r["for_reviewer"].as_bool()), (Some(arn.as_str()), Some(true)));
    assert_eq!(r["proposer"], op_arn("key-admin"));

    // The key-admin cannot approve his own request, nor reject it.
    deck.run("key-admin", &["approvals", "approve", &id, "--confirm", key]).fails(9, "proposed this request");
    deck.run("key-admin", &["approvals", "reject", &id, "--reason", "no"]).fails(9, "proposed this request");
    // A mistyped alias approves nothing.
    deck.run("security-lead", &["approvals", "approve", &id, "--confirm", "drop-kyc-key"]).fails(2, "--confirm");
    // The lead approves, and it runs as him.
    let done =
        deck.run("security-lead", &["approvals", "approve", &id, "--confirm", key, "--format", "json"]).ok().json();
    assert_eq!(done["approver"], op_arn("security-lead"));
    assert_eq!(done["proposer"], op_arn("key-admin"));
    assert_eq!(done["outcome"]["result"], "succeeded");
    assert_eq!(on_demand_rotations(&arn).await, before + 1);
    let calls = trail_calls("RotateKeyOnDemand", &arn).await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["userIdentity"]["arn"], op_arn("security-lead"));
    // Approving again: already approved (and executed) by the lead, nothing runs.
    deck.run("security-lead", &["approvals", "approve", &id, "--confirm", key]).fails(9, "already approved by");
    let shown = deck.run("key-auditor", &["approvals", "show", &id, "--format", "json"]).ok().json();
    assert_eq!(shown["state"], "executed");
    let review = deck.run("key-admin", &["review", "--format", "json"]).ok().json();
    let open = review["open_approval_requests"].as_array().expect("open requests");
    assert!(!open.iter().any(|r| r["id"] == id.as_str()), "executed, so no longer open: {open:#?}");
    assert_eq!(shown["by"], op_arn("security-lead"));
    assert_eq!(on_demand_rotations(&arn).await, before + 1);
    // Each acting operator's journal has its transitions.
    // (Other tests' requests may show up as `approval.expired` in a listing: this one's only.)
    let kinds = |who| {
        deck.journal(who)
            .iter()
            .filter(|e| e["body"]["id"] == id.as_str())
            .map(|e| e["kind"].as_str().unwrap_or("?").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds("key-admin"), ["approval.proposed"]);
    assert_eq!(kinds("security-lead"), ["approval.approved", "approval.executed"]);

    // The feed labels each transition of this request (subject `approval:<id>`), as the
    // lead's CloudTrail reader sees them: proposed by the key-admin, approved and executed
    // by the lead, and the key-admin's refused attempts are not labelled as moves.
    let want = [
        ("approval proposed", "key-admin"),
        ("approval approved", "security-lead"),
        ("approval executed", "security-lead"),
    ];
    let labels = eventually("the feed's approval labels", Duration::from_secs(30), || async {
        let out = deck.run("security-lead", &["feed", "--since", "1h", "--format", "json"]).ok();
        let seen: Vec<(String, String)> = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["subject"] == format!("approval:{id}").as_str())
            .filter_map(|v| {
                Some((v["label"].as_str()?.to_owned(), v["principal"]["name"].as_str().unwrap_or("?").to_owned()))
            })
            .collect();
        want.iter().all(|(l, who)| seen.iter().any(|(sl, sw)| sl == l && sw == who)).then_some(seen)
    })
    .await;
    assert!(!labels.iter().any(|(l, _)| l == "approval rejected" || l == "approval withdrawn"), "{labels:?}");
    eprintln!("happy path: {:?}", started.elapsed());
}

/// 004 §6: cancelling a scheduled deletion is single control. The key-admin proposes it
/// and carries it out as himself; AWS leaves the key Disabled.
#[tokio::test(flavor = "multi_thread")]
async fn the_key_admin_cancels_a_scheduled_deletion_alone() {
    let deck = Deck::new("cancel");
    let alias = format!("approvals-cancel-{}", std::process::id());
    let arn = fresh_key(&alias).await;
    let lead = kms("security-lead", REGION).await;
    lead.schedule_key_deletion().key_id(&arn).pending_window_in_days(30).send().await.expect("ScheduleKeyDeletion");

    let id = deck.propose("cancel-deletion", &alias, &[]);
    deck.attested(&id);
    let done =
        deck.run("key-admin", &["approvals", "approve", &id, "--confirm", &alias, "--format", "json"]).ok().json();
    assert_eq!(done["approver"], op_arn("key-admin"));
    assert_eq!(done["outcome"]["result"], "succeeded", "{done:#}");
    let m = kms("key-auditor", REGION).await.describe_key().key_id(&arn).send().await.expect("DescribeKey");
    let m = m.key_metadata.expect("metadata");
    assert_eq!(m.key_state().map(|s| s.as_str()), Some("Disabled"));
    assert!(m.deletion_date.is_none(), "no deletion scheduled any more");
    let calls = eventually("CloudTrail's CancelKeyDeletion", Duration::from_secs(30), || async {
        let calls = trail_calls("CancelKeyDeletion", &arn).await;
        (!calls.is_empty()).then_some(calls)
    })
    .await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["userIdentity"]["arn"], op_arn("key-admin"));
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_changed_requests_are_refused_and_withdraw_and_reject_work() {
    let started = Instant::now();
    let deck = Deck::new("refuse");
    let key = "drop-kyc-key";
    let arn = key_arn(key).await;

    // Expired: written through the store as the key-admin, created two days ago.
    let matrix = ApprovalMatrix::default();
    let id = keydeck::runtime::approvals::new_id(Utc::now());
    let r = Request::new(
        NewRequest {
            id: id.clone(),
            operation: Operation::RotateKey,
            target_arn: arn.clone(),
            parameters: Default::default(),
            reason: "old".into(),
            created: Utc::now() - chrono::Duration::days(2),
        },
        &matrix,
    )
    .expect("request");
    let rc = keydeck::aws::ops::region_config(&context("key-admin").await, Some(REGION));
    let tags: BTreeMap<String, String> = [(store::TAG_CONTENT_HASH.to_owned(), r.content_hash.clone())].into();
    store::create(&rc, &id, &r.canonical_json(), &tags).await.expect("create");
    deck.attested(&id);
    deck.run("security-lead", &["approvals", "approve", &id, "--confirm", key]).fails(9, "expired");
    // Expiry moves nothing in the store; each operator who meets it records it, once: the
    // lead (refused approval, then a listing) and the key-admin (its proposer, listing).
    let expired_of = |who| {
        deck.journal(who).iter().filter(|e| e["kind"] == "approval.expired" && e["body"]["id"] == id.as_str()).count()
    };
    assert_eq!(expired_of("security-lead"), 1);
    let l = deck.run("security-lead", &["approvals", "list", "--format", "json"]).ok().json();
    assert!(l["history"]
        .as_array()
        .expect("history")
        .iter()
        .any(|v| v["id"] == id.as_str() && v["state"] == "expired"));
    assert_eq!(expired_of("security-lead"), 1, "recorded once");
    assert_eq!(expired_of("key-admin"), 0);
    deck.run("key-admin", &["approvals", "list"]).ok();
    assert_eq!(expired_of("key-admin"), 1, "its proposer records it when it lists");
    deck.run("key-auditor", &["approvals", "list"]).ok();
    assert_eq!(expired_of("key-auditor"), 0, "not a party to it");

    // Changed after it was proposed: the key-admin rewrites the description (a valid
    // request, freshly hashed, with another reason).
    let id = deck.propose("rotate-key", key, &[]);
    deck.attested(&id);
    let stored = store::get(&rc, &id).await.expect("get");
    let mut forged: Request = serde_json::from_str(&stored.description).expect("request");
    forged.reason = "something else entirely".into();
    forged.content_hash = forged.compute_hash();
    aws_sdk_secretsmanager::Client::new(&rc.config)
        .update_secret()
        .secret_id(store::secret_name(&id))
        .description(forged.canonical_json())
        .send()
        .await
        .expect("UpdateSecret");
    // Its own hash matches, so only CloudTrail's record of the proposal tells: the
    // listing, `show` (text and JSON) say changed before anyone approves.
    assert!(forged.hash_matches());
    let l = deck.run("security-lead", &["approvals", "list", "--format", "json"]).ok().json();
    let listed = l["waiting_for_me"].as_array().expect("list").iter().find(|v| v["id"] == id.as_str()).cloned();
    assert_eq!(listed.as_ref().map(|v| v["content"].clone()), Some(Value::from("changed")), "{l:#}");
    let table = deck.run("security-lead", &["approvals", "list"]).ok().stdout;
    let row = table.lines().find(|l| l.contains(&id)).unwrap_or_default().to_owned();
    assert!(row.contains(" changed "), "{table}");
    let shown = deck.run("key-auditor", &["approvals", "show", &id, "--format", "json"]).ok().json();
    assert_eq!(shown["content"], "changed", "{shown:#}");
    let text = deck.run("key-auditor", &["approvals", "show", &id]).ok().stdout;
    assert!(text.contains("state     changed") && text.contains("CHANGED since it was proposed"), "{text}");
    deck.run("security-lead", &["approvals", "approve", &id, "--confirm", key])
        .fails(9, "changed since it was proposed");
    // The lead rejects it instead; the key-admin cannot withdraw it any more.
    deck.run("security-lead", &["approvals", "reject", &id, "--reason", "tampered"]).ok();
    deck.run("key-admin", &["approvals", "withdraw", &id]).fails(9, "already rejected by");

    // Withdraw: only the proposer.
    let id = deck.propose("rotate-key", key, &[]);
    deck.attested(&id);
    deck.run("security-lead", &["approvals", "withdraw", &id]).fails(9, "only the proposer");
    deck.run("key-admin", &["approvals", "withdraw", &id]).ok();
    // Twice: already withdrawn, by him as CloudTrail attests it, or by nobody named yet;
    // never "another operator".
    let again = deck.run("key-admin", &["approvals", "withdraw", &id]);
    again.fails(9, "already withdrawn by");
    assert!(!again.stderr.contains("another operator"), "{}", again.stderr);
    // Ended: the listing does not look its proposer up, and says so (not "not attested").
    let table = deck.run("key-admin", &["approvals", "list"]).ok().stdout;
    let row = table.lines().find(|l| l.contains(&id)).unwrap_or_default().to_owned();
    assert!(row.contains("(proposer not looked up for ended requests"), "{table}");
    let v = deck.run("key-auditor", &["approvals", "show", &id, "--format", "json"]).ok().json();
    assert_eq!(v["state"], "withdrawn");
    assert_eq!(v["content"], "matches", "as CloudTrail recorded it");
    assert_eq!(trail_calls("RotateKeyOnDemand", &arn).await.len(), 0, "nothing ran on {key}");
    eprintln!("refusals: {:?}", started.elapsed());
}

/// One store per account whatever Regions an operator selects (the policy's `[incident]
/// region`): a proposal made with `--region eu-west-1` is listed with the default Regions,
/// and the one-open-request rule holds across Regions (two rotations of one key were
/// possible when each Region had its own store).
#[tokio::test(flavor = "multi_thread")]
async fn one_store_whatever_regions_are_selected() {
    let deck = Deck::new("store-region");
    let key = "trove-oauth-token-key";
    let propose = |regions: &str, reason: &str| {
        deck.run_in("key-admin", regions, &["approvals", "propose", "rotate-key", "--key", key, "--reason", reason])
    };
    let id = propose("eu-west-1", "due").ok().stdout.trim().to_owned();
    assert_eq!(id.len(), 24, "a request id: {id:?}");
    propose("eu-north-1,eu-west-1", "again").fails(9, &format!("request {id} already proposes rotate-key"));
    let listed = deck.run_in("key-auditor", "eu-north-1", &["approvals", "list", "--format", "json"]).ok().json();
    assert!(listed.to_string().contains(&id), "{listed:#}");
    deck.attested(&id);
    deck.run("key-admin", &["approvals", "withdraw", &id]).ok();
    // A multi-Region replica's rotation is its primary's (RotateKeyOnDemand refuses a
    // replica): refused at proposal, naming the primary.
    let d = kms("key-auditor", REGION).await.describe_key().key_id("alias/drop-mr-payments-key").send().await;
    let md = d.expect("DescribeKey").key_metadata.expect("metadata");
    let mr = md.multi_region_configuration().expect("a multi-Region key");
    let replica = mr.replica_keys().first().and_then(|r| r.arn()).expect("its replica").to_owned();
    let args = ["approvals", "propose", "rotate-key", "--key", &replica, "--reason", "due"];
    deck.run_in("key-admin", "eu-north-1,eu-west-1", &args)
        .fails(9, "is a multi-Region replica")
        .fails(9, md.arn().expect("the primary's ARN"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_one_clear_line_and_runs_nothing() {
    let started = Instant::now();
    let deck = Deck::new("bad");
    deck.run("security-lead", &["approvals", "approve", "20000101-000000-deadbeef", "--confirm", "x"])
        .fails(2, "no request 20000101-000000-deadbeef");
    deck.run("security-lead", &["approvals", "show", "../etc"]).fails(2, "not a request id");
    let no_window = ["approvals", "propose", "schedule-deletion", "--key", "scratch-test-key", "--reason", "x"];
    deck.run("key-admin", &no_window).fails(2, "add --window-days N");

    // A malformed entry in the store: refused, and listed as malformed.
    let rc = keydeck::aws::ops::region_config(&context("key-admin").await, Some(REGION));
    let bad = format!("{}-0bad", keydeck::runtime::approvals::new_id(Utc::now()));
    store::create(&rc, &bad, "{\"not\": \"a request\"}", &BTreeMap::new()).await.expect("create");
    deck.run("security-lead", &["approvals", "approve", &bad, "--confirm", "x"]).fails(3, "malformed");
    let l = deck.run("security-lead", &["approvals", "list", "--format", "json"]).ok().json();
    assert!(l["malformed"].as_array().expect("m").iter().any(|m| m["id"] == bad.as_str()), "{l:#}");

    // A target in a region not selected: say which to add.
    let id = deck.propose("rotate-key", "drop-backup-key", &[]);
    deck.attested(&id);
    deck.run("security-lead", &["approvals", "approve", &id, "--confirm", "drop-backup-key"])
        .fails(3, "add --region eu-north-1,eu-west-1");

    // A key deleted meanwhile.
    let arn = fresh_key("approvals-doomed").await;
    let id = deck.propose("rotate-key", "approvals-doomed", &[]);
    deck.attested(&id);
    kms("security-lead", REGION)
        .await
        .schedule_key_deletion()
        .key_id(&arn)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule");
    deck.run("security-lead", &["approvals", "approve", &id, "--confirm", "approvals-doomed"])
        .fails(3, "pending deletion");
    let v = deck.run("key-auditor", &["approvals", "show", &id, "--format", "json"]).ok().json();
    assert_eq!(v["state"], "proposed", "the store is unchanged");
    assert_eq!(trail_calls("RotateKeyOnDemand", &arn).await.len(), 0);
    eprintln!("bad input: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_approvers_racing_execute_exactly_once_per_request() {
    const ROUNDS: usize = 10;
    let started = Instant::now();
    let deck = Deck::new("race");
    let alias = "approvals-race";
    let arn = fresh_key(alias).await;
    for round in 0..ROUNDS {
        let id = deck.propose("rotate-key", alias, &[]);
        deck.attested(&id);
        // The sandbox has one CISO-capable user: the same approver races himself, from
        // two processes started together.
        let racer = || {
            let mut c = deck.command("security-lead", REGION, &["approvals", "approve", &id, "--confirm", alias]);
            c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            c.spawn().expect("spawn an approver")
        };
        let (a, b) = (racer(), racer());
        let (a, b) = (a.wait_with_output().expect("a"), b.wait_with_output().expect("b"));
        let codes = [a.status.code(), b.status.code()];
        let errs = [String::from_utf8_lossy(&a.stderr).into_owned(), String::from_utf8_lossy(&b.stderr).into_owned()];
        assert_eq!(codes.iter().filter(|c| **c == Some(0)).count(), 1, "round {round}: one winner: {codes:?} {errs:?}");
        let loser = if codes[0] == Some(0) { &errs[1] } else { &errs[0] };
        assert!(loser.contains("already approved by"), "round {round}: {loser}");
        assert!(codes.contains(&Some(9)), "round {round}: the loser is refused (exit 9): {codes:?}");
        assert!(loser.contains(&op_arn("security-lead")), "round {round}: names the attested winner: {loser}");
        assert_eq!(on_demand_rotations(&arn).await, round + 1, "round {round}: exactly one execution");
    }
    let calls = trail_calls("RotateKeyOnDemand", &arn).await;
    assert_eq!(calls.len(), ROUNDS);
    eprintln!("race, {ROUNDS} rounds: {:?}", started.elapsed());
}

/// The race on schedule-deletion, replayed exactly: the loser read the request while it
/// was proposed; meanwhile the other approver approved it and carried it out, so the key
/// is pending deletion. The loser hears who won (refused, exit 9), not that the key was
/// deleted meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn the_loser_of_a_schedule_deletion_race_hears_who_won() {
    let deck = Deck::new("race-delete");
    let alias = format!("approvals-race-delete-{}", std::process::id());
    let arn = fresh_key(&alias).await;
    let id = deck.propose("schedule-deletion", &alias, &["--window-days", "7"]);
    deck.attested(&id);
    let options = sandbox().connect_options("security-lead", &[REGION.to_owned()]).expect("options");
    let ctx = keydeck::aws::AwsContext::connect(&options).await.expect("context");
    let held = flow::read_entry(&ctx, &id).await.expect("the request as proposed");
    deck.run("security-lead", &["approvals", "approve", &id, "--confirm", &alias]).ok();
    let me =
        CallerIdentity { arn: op_arn("security-lead"), account: sandbox().account_id.clone(), user_id: String::new() };
    let (dir, matrix) = (deck.dir.join("loser"), ApprovalMatrix::default());
    let e = flow::approve_as_read(&ctx, (&dir, &matrix, &me), held, &alias).await.expect_err("the loser is refused");
    let line = e.to_string();
    assert!(matches!(e, flow::ApprovalError::Refused(_)), "exit 9, the refusal code: {e:?}");
    assert!(line.contains("already approved by") && !line.contains("pending deletion"), "{line}");
    let calls = eventually("CloudTrail's ScheduleKeyDeletion", Duration::from_secs(30), || async {
        let calls = trail_calls("ScheduleKeyDeletion", &arn).await;
        (!calls.is_empty()).then_some(calls)
    })
    .await;
    assert_eq!(calls.len(), 1, "exactly one execution: {calls:#?}");
}

/// Credentials of one principal besides the seeded operators' first keys: a user's second
/// access key, or a session of a role (with its session token).
struct Keys {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Deck {
    /// keydeck (with `--allow-write`) under `keys`, with `who`'s data dir.
    fn run_as(&self, who: &str, keys: &Keys, args: &[&str]) -> Ran {
        let mut c = self.command(who, REGION, args);
        c.env("AWS_ACCESS_KEY_ID", &keys.access_key_id).env("AWS_SECRET_ACCESS_KEY", &keys.secret_access_key);
        if let Some(t) = &keys.session_token {
            c.env("AWS_SESSION_TOKEN", t);
        }
        Ran::of(c, format!("{who} ({}): keydeck {}", keys.access_key_id, args.join(" ")))
    }

    /// Wait (with a deadline) until CloudTrail attests `who` as the proposer of `id`.
    fn attested_as(&self, id: &str, who: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.run("key-auditor", &["approvals", "show", id, "--format", "json"]).ok().json();
            if let Some(p) = v["proposer"].as_str() {
                assert_eq!(p, who);
                return;
            }
            assert!(Instant::now() < deadline, "CloudTrail did not attest the proposer of {id} in 30 s");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A session of the key-admin's role drop-key-admin, assumed by the key-admin user.
async fn role_session(name: &str) -> (Keys, String) {
    let op = sandbox().operator("key-admin").expect("key-admin");
    let role = op.role_arn.clone().expect("the sandbox seeds the key-admin's role (estate: assumable_role)");
    let sts = aws_sdk_sts::Client::new(&config_in(&context("key-admin").await, REGION));
    let out = sts.assume_role().role_arn(&role).role_session_name(name).send().await.expect("sts:AssumeRole");
    let c = out.credentials.expect("credentials");
    let arn = out.assumed_role_user.expect("assumed role user").arn;
    let keys = Keys {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: Some(c.session_token),
    };
    (keys, arn)
}

/// 004 §6 "a second person": the key-admin cannot approve his own request through his
/// second access key, nor through a session of his role named as he is; and two sessions
/// of one role are one principal, whatever their names. Each refusal is keydeck comparing
/// what AWS attests: GetCallerIdentity of the approver, the CloudTrail record (IAMUser or
/// AssumedRole) of the proposal. Nothing runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_access_key_or_a_role_session_of_the_proposer_cannot_approve() {
    let deck = Deck::new("same-principal");
    let key = "approvals-same-principal";
    let arn = fresh_key(key).await;
    let before = on_demand_rotations(&arn).await;
    let op = sandbox().operator("key-admin").expect("key-admin");
    let second = Keys {
        access_key_id: op.second_access_key_id.clone().expect("estate: second_access_key"),
        secret_access_key: op.second_secret_access_key.clone().expect("its secret"),
        session_token: None,
    };
    assert_ne!(second.access_key_id, op.access_key_id);

    // The user proposes; his second access key is the same principal.
    let id = deck.propose("rotate-key", key, &[]);
    deck.attested(&id);
    deck.run_as("key-admin", &second, &["approvals", "approve", &id, "--confirm", key])
        .fails(9, "proposed this request");
    // A session of his role named as he is: the same person in another role.
    let (same_name, session_arn) = role_session("key-admin").await;
    assert!(session_arn.ends_with(":assumed-role/drop-key-admin/key-admin"), "{session_arn}");
    deck.run_as("key-admin", &same_name, &["approvals", "approve", &id, "--confirm", key])
        .fails(9, "same person in another role");

    // A session of the role proposes (attested as AssumedRole); another session of the
    // same role, with another name, is the same principal.
    let (alice, alice_arn) = role_session("alice").await;
    // (Another operation: one open request per operation and key.)
    let dup = deck.run_as("key-admin", &alice, &["approvals", "propose", "rotate-key", "--key", key, "--reason", "x"]);
    dup.fails(9, &format!("request {id} already proposes rotate-key"));
    let propose =
        ["approvals", "propose", "schedule-deletion", "--window-days", "30", "--key", key, "--reason", "retire it"];
    let out = deck.run_as("key-admin", &alice, &propose).ok();
    let id2 = out.stdout.trim().to_owned();
    deck.attested_as(&id2, &alice_arn);
    let (bob, _) = role_session("bob").await;
    deck.run_as("key-admin", &bob, &["approvals", "approve", &id2, "--confirm", key])
        .fails(9, "a different session of the same user or role is the same principal");

    // Nothing ran; both requests are still open for the CISO.
    assert_eq!(on_demand_rotations(&arn).await, before);
    for r in [&id, &id2] {
        let v = deck.run("key-auditor", &["approvals", "show", r, "--format", "json"]).ok().json();
        assert_eq!(v["state"], "proposed", "{r}");
    }
    // Withdraw both (the store stays tidy for the other tests' listings).
    deck.run("key-admin", &["approvals", "withdraw", &id]).ok();
    deck.run_as("key-admin", &alice, &["approvals", "withdraw", &id2]).ok();
}
