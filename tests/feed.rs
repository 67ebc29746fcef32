//! The CloudTrail feed end to end against the sandbox: `keydeck feed` and `keydeck alerts`
//! through the real binary, and the console's poller (pacing, backoff, late delivery).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use common::*;
use keydeck::domain::feed::Feed;
use keydeck::domain::trail::parse_event;
use keydeck::runtime::poller::{poll_once, Pacer, PollConfig};
use serde_json::Value;

fn keydeck_as(operator: &str, data_dir: &Path) -> Command {
    common::keydeck_as(operator, data_dir, "eu-north-1")
}

fn feed_events(operator: &str) -> Vec<Value> {
    let d = temp_dir("feed");
    let out = keydeck_as(operator, &d).args(["feed", "--since", "30m", "--format", "json"]).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON line: {e}: {l}")))
        .collect()
}

async fn kms(operator: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(region_config(&context(operator).await, "eu-north-1"))
}

#[tokio::test]
async fn calls_by_different_users_appear_with_principal_alias_and_outcome() {
    kms("app-encrypt")
        .await
        .generate_data_key()
        .key_id("alias/drop-kyc-key")
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .send()
        .await
        .expect("app-encrypt generates a data key");
    kms("outsider").await.describe_key().key_id("alias/drop-kyc-key").send().await.expect_err("outsider is denied");
    let events = tokio::task::spawn_blocking(|| feed_events("key-auditor")).await.expect("join");
    let find = |name: &str, who: &str| {
        events
            .iter()
            .find(|e| e["event_name"] == name && e["principal"]["name"] == who && e["subject"] == "drop-kyc-key")
            .unwrap_or_else(|| panic!("{name} by {who} on drop-kyc-key not in the feed ({} events)", events.len()))
    };
    let ok = find("GenerateDataKey", "app-encrypt");
    assert_eq!(ok["error_code"], Value::Null);
    assert_eq!(ok["region"], "eu-north-1");
    let denied = find("DescribeKey", "outsider");
    assert_eq!(denied["error_code"], "AccessDenied");
    // Newest last, each event once.
    let ids: Vec<&str> = events.iter().filter_map(|e| e["event_id"].as_str()).collect();
    let mut uniq = ids.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), ids.len(), "duplicates in the feed");
    let times: Vec<&str> = events.iter().filter_map(|e| e["event_time"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "event-time order");
}

#[tokio::test]
async fn default_rules_fire_and_near_misses_stay_silent() {
    let lead = kms("security-lead").await;
    // ScheduleKeyDeletion: an immediate, critical alert (004 §8).
    let doomed = lead.create_key().description("feed test: doomed").send().await.expect("create");
    let doomed_id = doomed.key_metadata().expect("metadata").key_id().to_owned();
    lead.describe_key().key_id(&doomed_id).send().await.expect("near miss: a read");
    lead.schedule_key_deletion().key_id(&doomed_id).pending_window_in_days(7).send().await.expect("schedule");
    // More than 3 failed KMS calls by one principal in 5 minutes; 3 is a near miss.
    let outsider = kms("outsider").await;
    for _ in 0..4 {
        outsider.list_keys().send().await.expect_err("denied");
    }
    let compliance = kms("compliance-decrypt").await;
    for _ in 0..3 {
        compliance.list_keys().send().await.expect_err("denied");
    }
    // Decrypt of drop-kyc-key by a principal its rule does not allow; app-runner is allowed.
    let blob = kms("app-encrypt")
        .await
        .encrypt()
        .key_id("alias/drop-kyc-key")
        .plaintext(Blob::new(b"kyc document key".to_vec()))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .expect("ciphertext")
        .clone();
    compliance.decrypt().ciphertext_blob(blob.clone()).send().await.expect("compliance can decrypt (IAM)");
    kms("app-runner").await.decrypt().ciphertext_blob(blob).send().await.expect("app-runner decrypts");

    let d = temp_dir("alerts");
    let out = tokio::task::spawn_blocking(move || {
        keydeck_as("security-lead", &d)
            .args(["alerts", "--since", "30m", "--format", "json", "--fail-on", "critical"])
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "a critical alert fired: exit 1");
    let alerts = v["alerts"].as_array().expect("alerts");
    let any = |rule: &str, pred: &dyn Fn(&Value) -> bool| alerts.iter().any(|a| a["rule"] == rule && pred(a));
    let who = |a: &Value, name: &str| a["principal"].as_str().unwrap_or("").ends_with(&format!("/{name}"));
    assert!(
        any("schedule_key_deletion", &|a| a["key"].as_str().unwrap_or("").contains(&doomed_id)
            && a["severity"] == "critical"),
        "{alerts:#?}"
    );
    assert!(any("failed_calls", &|a| who(a, "outsider")), "4 failures fire: {alerts:#?}");
    assert!(!any("failed_calls", &|a| who(a, "compliance-decrypt")), "3 failures do not: {alerts:#?}");
    assert!(
        any("unexpected_principal", &|a| who(a, "compliance-decrypt") && a["key"] == "drop-kyc-key"),
        "{alerts:#?}"
    );
    assert!(!any("unexpected_principal", &|a| who(a, "app-runner")), "app-runner is allowed: {alerts:#?}");
}

#[tokio::test]
async fn late_events_appear_exactly_once() {
    // eu-west-1 is this test's own region: its delivery delay does not slow the others.
    let region = "eu-west-1";
    set_region_trail_delay(region, Some(3.0)).await;
    let auditor = context("key-auditor").await;
    let rc = auditor.regions().iter().find(|r| r.region == region).expect("region").clone();
    let marker = format!("late-{}", std::process::id());
    let lead = aws_sdk_kms::Client::new(region_config(&context("security-lead").await, region));
    let started = chrono::Utc::now() - chrono::Duration::seconds(5);
    let key = lead.create_key().description(&marker).send().await.expect("create");
    let arn = key.key_metadata().and_then(|m| m.arn()).expect("arn").to_owned();
    let cfg = PollConfig { min_gap: Duration::from_millis(600), ..PollConfig::default() };
    let mut pacer = Pacer::new(cfg.min_gap);
    let mut feed = Feed::new(1000);
    let mut seen_in = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut polls = 0;
    // Overlapping windows, every poll re-reading from the start; stop two polls after it shows.
    while Instant::now() < deadline {
        let until = chrono::Utc::now();
        let r = poll_once(&rc, &cfg, &mut pacer, started, until).await.expect("poll");
        polls += 1;
        let parsed: Vec<_> = r.records.iter().filter_map(|(_, raw)| parse_event(raw).ok()).collect();
        let new = feed.insert(parsed);
        let hits = new.iter().filter(|e| e.event_name == "CreateKey" && e.key_refs.iter().any(|k| k == &arn)).count();
        seen_in.push(hits);
        if seen_in.iter().sum::<usize>() > 0
            && seen_in.len() >= 2
            && seen_in[seen_in.len() - 1] == 0
            && seen_in[seen_in.len() - 2] == 0
        {
            break;
        }
    }
    set_region_trail_delay(region, None).await;
    assert_eq!(seen_in.first(), Some(&0), "delivered late, not in the first poll: {seen_in:?}");
    assert_eq!(seen_in.iter().sum::<usize>(), 1, "exactly once over {polls} overlapping polls: {seen_in:?}");
    let in_feed = feed.iter().filter(|e| e.event_name == "CreateKey" && e.key_refs.iter().any(|k| k == &arn)).count();
    assert_eq!(in_feed, 1);
}

#[tokio::test]
async fn throttling_never_reaches_the_operator() {
    // Three pollers on one region with their own pacers: 5 calls/s against a 2/s limit.
    let ctx = context("key-auditor").await;
    let rc = ctx.regions().iter().find(|r| r.region == "eu-north-1").expect("region").clone();
    let cfg = PollConfig { min_gap: Duration::from_millis(200), max_pages: 2, ..PollConfig::default() };
    let until = chrono::Utc::now();
    let from = until - chrono::Duration::minutes(30);
    let polls = (0..3).map(|_| {
        let (rc, cfg) = (rc.clone(), cfg.clone());
        tokio::spawn(async move {
            let mut pacer = Pacer::new(cfg.min_gap);
            let mut throttled = 0;
            for _ in 0..3 {
                let r =
                    poll_once(&rc, &cfg, &mut pacer, from, until).await.expect("throttling is retried, never an error");
                throttled += r.throttled;
            }
            throttled
        })
    });
    let mut throttled = 0;
    for p in polls {
        throttled += p.await.expect("join");
    }
    assert!(throttled > 0, "the burst was throttled and backed off");
}

#[test]
fn bad_since_and_severity_are_usage_errors() {
    let d = temp_dir("feed");
    let out = keydeck_as("key-auditor", &d).args(["feed", "--since", "2 weeks"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = keydeck_as("key-auditor", &d).args(["alerts", "--fail-on", "urgent"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn iam_changes_to_key_roles_appear_in_the_feed() {
    // As the security lead, through the AWS CLI: re-assert app-runner's access key (a key
    // role) and the outsider's (not one).
    let lead = sandbox().operator("security-lead").expect("seeded").clone();
    let endpoint = sandbox().endpoint.clone();
    let run = move |args: &[&str]| -> String {
        let out = Command::new("aws")
            .args(args)
            .args(["--output", "text"])
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", &lead.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &lead.secret_access_key)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("aws cli");
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let events = tokio::task::spawn_blocking(move || {
        for user in ["app-runner", "outsider"] {
            let key =
                run(&["iam", "list-access-keys", "--user-name", user, "--query", "AccessKeyMetadata[0].AccessKeyId"]);
            run(&["iam", "update-access-key", "--user-name", user, "--access-key-id", &key, "--status", "Active"]);
        }
        feed_events("key-auditor")
    })
    .await
    .expect("join");
    let iam: Vec<&Value> = events.iter().filter(|e| e["event_source"] == "iam.amazonaws.com").collect();
    assert!(
        iam.iter().any(|e| e["event_name"] == "UpdateAccessKey" && e["subject"] == "iam:app-runner"),
        "the key role's change is in the feed: {iam:#?}"
    );
    assert!(!iam.iter().any(|e| e["subject"] == "iam:outsider"), "other IAM changes are not: {iam:#?}");
}
