//! The dual-approval request store in AWS (Secrets Manager + CloudTrail), through the real
//! SDK against the sandbox: requests are created and read back from descriptions and
//! staging labels only (never a secret value), AWS attests who proposed and who approved,
//! racing approvers move a request exactly once, each operator has the store's
//! permissions and no more, and malformed or foreign entries are listed, not fatal.
//!
//! This binary has its own sandbox (no traffic: nothing calls GetSecretValue unless the
//! code under test does).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use common::*;
use keydeck::aws::approvals::{self, Attest, StoredRequest, TransitionError};
use keydeck::aws::context::RegionConfig;
use keydeck::aws::AwsErrorKind;

const REGION: &str = "eu-north-1";

/// A fresh request id (36 characters, as a UUID): unique per test process and call.
fn new_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{:08x}-{:04x}-4000-8000-{:012x}", std::process::id(), n, nanos)
}

/// The state token of an approval by principal number `p` (a stand-in for its hash).
fn approved(id: &str, p: u64) -> String {
    format!("approved-{id}-{p:016x}")
}

async fn rc(operator: &str, region: &str) -> RegionConfig {
    keydeck::aws::ops::region_config(&context(operator).await, Some(region))
}

fn tags(op: &str, target: &str) -> BTreeMap<String, String> {
    [(approvals::TAG_OPERATION.to_owned(), op.to_owned()), (approvals::TAG_TARGET.to_owned(), target.to_owned())].into()
}

fn request_json(id: &str) -> String {
    serde_json::json!({
        "id": id, "operation": "rotate-key",
        "target_arn": "arn:aws:kms:eu-north-1:123456789012:key/0b8f2c1e-0000-4000-8000-000000000001",
        "parameters": {}, "reason": "rotation overdue", "created": "2026-11-29T10:00:00Z",
        "expires": "2026-11-30T10:00:00Z", "content_hash": "sha256:00",
    })
    .to_string()
}

async fn sdk(operator: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&rc(operator, REGION).await.config)
}

fn get_secret_value_calls(stats: &serde_json::Value) -> u64 {
    stats["by_action"]["secretsmanager:GetSecretValue"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_proposal_is_stored_read_back_and_attested_without_any_secret_value() {
    let admin = rc("key-admin", REGION).await;
    let lead = rc("security-lead", REGION).await;
    let id = new_id();
    let body = request_json(&id);
    let target = "arn:aws:kms:eu-north-1:123456789012:key/0b8f2c1e-0000-4000-8000-000000000001";
    let (arn, version) = approvals::create(&admin, &id, &body, &tags("rotate-key", target)).await.expect("create");
    assert_eq!(version, approvals::proposed_token(&id));
    assert!(arn.contains(&format!(":secret:keydeck/approvals/{id}-")), "{arn}");
    // Creating again with the same content is the same request (idempotent by token).
    let again = approvals::create(&admin, &id, &body, &tags("rotate-key", target)).await.expect("create again");
    assert_eq!(again.0, arn);

    // Another operator, on another machine, sees the same request.
    let listed = approvals::list(&lead).await.expect("list");
    let r: &StoredRequest = listed.iter().find(|r| r.id == id).expect("listed");
    assert_eq!(r.arn, arn);
    assert_eq!(r.description, body);
    assert_eq!(r.tags.get("keydeck:approval").map(String::as_str), Some("request"));
    assert_eq!(r.tags.get("keydeck:operation").map(String::as_str), Some("rotate-key"));
    assert_eq!(r.tags.get("keydeck:target").map(String::as_str), Some(target));
    assert_eq!(r.current_version_token.as_deref(), Some(version.as_str()));
    assert_eq!(r.versions.get(&version), Some(&vec!["AWSCURRENT".to_owned()]));
    assert!(r.created.is_some());
    assert_eq!(r.problem(), None);
    assert_eq!(&approvals::get(&admin, &id).await.expect("get"), r);

    // A transition, then both states are labels (AWSPREVIOUS moved by Secrets Manager).
    let to = approved(&id, 1);
    approvals::transition(&lead, &id, &version, &to).await.expect("approve");
    let now = approvals::get(&admin, &id).await.expect("get");
    assert_eq!(now.current_version_token.as_deref(), Some(to.as_str()));
    assert_eq!(now.versions.get(&version), Some(&vec!["AWSPREVIOUS".to_owned()]));

    // AWS attests who proposed and who approved (CloudTrail), whatever the request says.
    let since = r.created.expect("created");
    let proposer = eventually("CreateSecret in CloudTrail", Duration::from_secs(30), || async {
        approvals::attested_actor(&admin, &arn, Attest::Created, since).await.expect("LookupEvents")
    })
    .await;
    assert_eq!(proposer.principal_arn, sandbox().operator("key-admin").expect("seeded").arn);
    assert_eq!(proposer.identity_type, "IAMUser");
    let approver = eventually("UpdateSecretVersionStage in CloudTrail", Duration::from_secs(30), || async {
        approvals::attested_actor(&admin, &arn, Attest::MovedCurrentTo(&to), since).await.expect("LookupEvents")
    })
    .await;
    assert_eq!(approver.principal_arn, sandbox().operator("security-lead").expect("seeded").arn);

    // The request is not inventory, and its events have their own subject in the feed.
    let inv = keydeck::aws::fetch_inventory(&context("key-admin").await).await;
    assert!(inv.secrets().all(|s| !s.name.starts_with(approvals::PREFIX)), "approval secrets are not inventory");
    assert!(inv.secrets().any(|s| s.name == "JWT_SECRET"));
    let created = trail_records()
        .await
        .into_iter()
        .find(|r| r["eventName"] == "CreateSecret" && r["responseElements"]["arn"] == arn.as_str())
        .expect("the CreateSecret record");
    let ev = keydeck::domain::trail::parse_event(&created.to_string()).expect("parses");
    assert_eq!(keydeck::domain::detect::KeyIndex::new().subject(&ev), format!("approval:{id}"));
    assert!(created.to_string().find(approvals::MARKER).is_none(), "SecretString is not recorded");

    // keydeck's store never read a value (and nothing else in this sandbox does).
    assert_eq!(get_secret_value_calls(&sandbox_stats().await), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn racing_approvers_move_a_request_exactly_once_per_round() {
    const RACERS: u64 = 6;
    const ROUNDS: u64 = 10;
    let admin = rc("key-admin", REGION).await;
    let lead = rc("security-lead", REGION).await;
    let id = new_id();
    let (arn, mut from) =
        approvals::create(&admin, &id, &request_json(&id), &tags("rotate-key", "k")).await.expect("create");
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    let mut winners = Vec::new();
    for round in 0..ROUNDS {
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS as usize));
        let mut tasks = Vec::new();
        for i in 0..RACERS {
            // Both operators the store allows to transition, interleaved.
            let rc = if i % 2 == 0 { lead.clone() } else { admin.clone() };
            let (id, from, to, start) = (id.clone(), from.clone(), approved(&id, round * 100 + i), start.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                (to.clone(), approvals::transition(&rc, &id, &from, &to).await)
            }));
        }
        let mut won = Vec::new();
        let mut lost = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                (to, Ok(())) => won.push(to),
                (_, Err(TransitionError::Lost { current_token })) => lost.push(current_token),
                (to, Err(TransitionError::Aws(e))) => panic!("round {round}, {to}: {e}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: exactly one approver wins: {won:?}");
        assert_eq!(lost.len() as u64, RACERS - 1);
        assert!(lost.iter().all(|t| t == &won[0]), "round {round}: the losers learn the winner: {lost:?} vs {won:?}");
        let now = approvals::get(&admin, &id).await.expect("get");
        assert_eq!(now.current_version_token.as_deref(), Some(won[0].as_str()));
        // Retrying the winning transition is no second transition.
        approvals::transition(&lead, &id, &from, &won[0]).await.expect("the winner's retry is idempotent");
        from = won[0].clone();
        winners.push(won.remove(0));
    }
    // CloudTrail attests each round's winner, and no loser moved the label.
    let last = winners.last().expect("a winner").clone();
    let a = eventually("the last winner in CloudTrail", Duration::from_secs(30), || async {
        approvals::attested_actor(&admin, &arn, Attest::MovedCurrentTo(&last), since).await.expect("LookupEvents")
    })
    .await;
    // Racer i of a round made token round*100+i: even i acted as the security lead.
    let racer = u64::from_str_radix(&last[last.len() - 16..], 16).expect("hex") % 100;
    let who = if racer % 2 == 0 { "security-lead" } else { "key-admin" };
    assert_eq!(a.principal_arn, sandbox().operator(who).expect("seeded").arn, "{last}");
    let records = trail_records().await;
    let moves: Vec<_> = records
        .iter()
        .filter(|r| {
            r["eventName"] == "UpdateSecretVersionStage"
                && r["requestParameters"]["secretId"] == approvals::secret_name(&id).as_str()
        })
        .collect();
    let ok = moves.iter().filter(|r| r.get("errorCode").is_none()).count();
    assert_eq!(ok as u64, ROUNDS, "one successful move per round");
    let refused = moves.iter().filter(|r| r["errorCode"] == "InvalidParameterException").count() as u64;
    assert_eq!(refused, ROUNDS * (RACERS - 1) + ROUNDS, "every loser (and each retry) refused");
}

#[tokio::test]
async fn a_stale_remove_from_version_is_refused_as_secrets_manager_refuses_it() {
    let lead = sdk("security-lead").await;
    let admin = rc("key-admin", REGION).await;
    let id = new_id();
    let (arn, proposed) =
        approvals::create(&admin, &id, &request_json(&id), &tags("rotate-key", "k")).await.expect("create");
    let name = approvals::secret_name(&id);
    let (a, b) = (approved(&id, 0xa), approved(&id, 0xb));
    for v in [&a, &b] {
        lead.put_secret_value()
            .secret_id(&name)
            .client_request_token(v)
            .secret_string(approvals::MARKER)
            .version_stages("keydeck-pending")
            .send()
            .await
            .expect("PutSecretValue");
    }
    let mv = |to: &str, from: &str| {
        lead.update_secret_version_stage()
            .secret_id(&name)
            .version_stage("AWSCURRENT")
            .move_to_version_id(to)
            .remove_from_version_id(from)
            .send()
    };
    mv(&a, &proposed).await.expect("the first move");
    let e = mv(&b, &proposed).await.expect_err("the label is no longer on the proposed version");
    assert_eq!(e.code(), Some("InvalidParameterException"), "{e:?}");
    assert_eq!(
        e.message(),
        Some(
            "When you move staging label AWSCURRENT, if you specify RemoveFromVersionId, it must be set to the \
             version that currently has the staging label AWSCURRENT."
        )
    );
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));

    // Every label is on one version: keydeck-pending moved from a to b when b was put.
    let d = lead.describe_secret().secret_id(&name).send().await.expect("DescribeSecret");
    let stages = d.version_ids_to_stages().expect("stages");
    assert_eq!(stages.get(&a), Some(&vec!["AWSCURRENT".to_owned()]));
    assert_eq!(stages.get(&proposed), Some(&vec!["AWSPREVIOUS".to_owned()]));
    assert_eq!(stages.get(&b), Some(&vec!["keydeck-pending".to_owned()]));
    // Make b deprecated: its only label moves to a new version.
    let c = approved(&id, 0xc);
    lead.put_secret_value()
        .secret_id(&name)
        .client_request_token(&c)
        .secret_string(approvals::MARKER)
        .version_stages("keydeck-pending")
        .send()
        .await
        .expect("PutSecretValue");
    let d = lead.describe_secret().secret_id(&name).send().await.expect("DescribeSecret");
    assert!(!d.version_ids_to_stages().expect("stages").contains_key(&b), "{d:?}");
    let listed = lead.list_secret_version_ids().secret_id(&name).send().await.expect("ListSecretVersionIds");
    assert_eq!(listed.arn(), Some(arn.as_str()));
    assert!(listed.versions().iter().all(|v| v.version_id() != Some(b.as_str())));
    let all = lead
        .list_secret_version_ids()
        .secret_id(&name)
        .include_deprecated(true)
        .send()
        .await
        .expect("ListSecretVersionIds IncludeDeprecated");
    assert!(all.versions().iter().any(|v| v.version_id() == Some(b.as_str()) && v.version_stages().is_empty()));
    // ListSecrets agrees with DescribeSecret.
    let entry = lead
        .list_secrets()
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                .values(&name)
                .build(),
        )
        .send()
        .await
        .expect("ListSecrets");
    let e = entry.secret_list().iter().find(|s| s.name() == Some(name.as_str())).expect("listed");
    assert!(!e.secret_versions_to_stages().expect("stages").contains_key(&b));
}

#[tokio::test]
async fn each_operator_has_the_stores_permissions_and_no_more() {
    let id = new_id();
    let body = request_json(&id);
    for who in ["outsider", "key-auditor", "app-runner"] {
        let e = approvals::create(&rc(who, REGION).await, &id, &body, &tags("rotate-key", "k")).await.expect_err(who);
        assert_eq!(e.kind, AwsErrorKind::AccessDenied, "{who}: {e}");
        assert_eq!(e.call, "secretsmanager:CreateSecret");
    }
    let admin = rc("key-admin", REGION).await;
    let (_, proposed) =
        approvals::create(&admin, &id, &body, &tags("rotate-key", "k")).await.expect("key-admin proposes");
    match approvals::transition(&rc("outsider", REGION).await, &id, &proposed, &approved(&id, 9)).await {
        Err(TransitionError::Aws(e)) => {
            assert_eq!(e.kind, AwsErrorKind::AccessDenied, "{e}");
            assert_eq!(e.call, "secretsmanager:PutSecretValue");
        }
        other => panic!("the outsider moved a request: {other:?}"),
    }
    let e = approvals::list(&rc("outsider", REGION).await).await.expect_err("outsider lists");
    assert_eq!(e.kind, AwsErrorKind::AccessDenied);
    // The auditor reads the store.
    assert!(approvals::list(&rc("key-auditor", REGION).await).await.expect("auditor lists").iter().any(|r| r.id == id));

    // Scoped to the store: the key-admin cannot write JWT_SECRET nor make other secrets;
    // the security lead (who rotates any compromised secret) creates only requests.
    let admin_sdk = sdk("key-admin").await;
    let put = admin_sdk.put_secret_value().secret_id("JWT_SECRET").secret_string("x").send().await;
    let e = put.expect_err("key-admin writes JWT_SECRET");
    assert_eq!(e.code(), Some("AccessDeniedException"), "{e:?}");
    let msg = e.message().unwrap_or("");
    assert!(msg.contains("user/key-admin is not authorized to perform: secretsmanager:PutSecretValue on resource: arn:aws:secretsmanager:eu-north-1:123456789012:secret:JWT_SECRET-"), "{msg}");
    assert!(msg.ends_with("because no identity-based policy allows the secretsmanager:PutSecretValue action"), "{msg}");
    let other = admin_sdk.create_secret().name(format!("not-an-approval-{id}")).secret_string("x").send().await;
    assert_eq!(other.expect_err("outside the prefix").code(), Some("AccessDeniedException"));
    let moved = admin_sdk
        .update_secret_version_stage()
        .secret_id("DATABASE_URL")
        .version_stage("AWSCURRENT")
        .move_to_version_id(approved(&id, 1))
        .send()
        .await;
    assert_eq!(moved.expect_err("DATABASE_URL").code(), Some("AccessDeniedException"));
    let lead_sdk = sdk("security-lead").await;
    let other = lead_sdk.create_secret().name(format!("not-an-approval-lead-{id}")).secret_string("x").send().await;
    assert_eq!(other.expect_err("the lead creates only requests").code(), Some("AccessDeniedException"));
    // CreateSecret with tags needs secretsmanager:TagResource too (as in AWS): on-call has
    // neither, so it is refused for CreateSecret first.
    let e =
        approvals::create(&rc("on-call", REGION).await, &new_id(), &body, &tags("x", "y")).await.expect_err("on-call");
    assert_eq!(e.kind, AwsErrorKind::AccessDenied);
    // The refusals are in CloudTrail as AWS records them.
    let records = trail_records().await;
    assert!(records.iter().any(|r| r["eventName"] == "PutSecretValue"
        && r["userIdentity"]["userName"] == "key-admin"
        && r["errorCode"] == "AccessDenied"
        && r["requestParameters"]["secretId"] == "JWT_SECRET"));
}

#[tokio::test]
async fn malformed_foreign_or_oversized_entries_do_not_break_the_store() {
    let admin = rc("key-admin", REGION).await;
    // Tagged but not a request (bad JSON), through keydeck's own create.
    let bad = new_id();
    approvals::create(&admin, &bad, "{not json", &tags("rotate-key", "k")).await.expect("create");
    // Foreign: no tags, under the prefix, by hand.
    let foreign = new_id();
    sdk("key-admin")
        .await
        .create_secret()
        .name(approvals::secret_name(&foreign))
        .description("{\"id\":\"someone else's\"}")
        .secret_string("x")
        .send()
        .await
        .expect("a foreign secret under the prefix");
    let listed = approvals::list(&admin).await.expect("list despite them");
    let find = |id: &str| listed.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("{id} listed"));
    assert!(find(&bad).problem().is_some_and(|p| p.contains("not JSON")), "{:?}", find(&bad).problem());
    assert!(find(&foreign).problem().is_some_and(|p| p.contains("not tagged")));
    // A foreign secret under the prefix stays in the inventory (it is not keydeck's).
    let inv = keydeck::aws::fetch_inventory(&context("key-admin").await).await;
    assert!(inv.secrets().any(|s| s.name == approvals::secret_name(&foreign)));
    assert!(inv.secrets().all(|s| s.name != approvals::secret_name(&bad)));

    // Over Secrets Manager's 2048-character description: refused before any call.
    let big = new_id();
    let e = approvals::create(&admin, &big, &"x".repeat(2049), &BTreeMap::new()).await.expect_err("too big");
    assert_eq!(e.kind, AwsErrorKind::Client);
    assert!(e.message.contains("2049 characters"), "{e}");
    assert_eq!(approvals::get(&admin, &big).await.expect_err("not created").kind, AwsErrorKind::NotFound);
    // A token Secrets Manager would refuse (under 32 characters) is refused here.
    let short = approvals::create(&admin, "r1", "{}", &BTreeMap::new()).await.expect_err("short id");
    assert!(short.message.contains("32 to 64"), "{short}");
    // An unknown request.
    assert_eq!(approvals::get(&admin, &new_id()).await.expect_err("unknown").kind, AwsErrorKind::NotFound);
}

#[tokio::test]
async fn cloudtrail_attests_only_once_it_has_delivered() {
    // A region of its own, with a delivery delay: the attestation is "not yet", then it is.
    const LATE: &str = "us-west-2";
    set_region_trail_delay(LATE, Some(3.0)).await;
    let admin = rc("key-admin", LATE).await;
    let id = new_id();
    let since = chrono::Utc::now();
    let (arn, _) = approvals::create(&admin, &id, &request_json(&id), &tags("rotate-key", "k")).await.expect("create");
    let now = approvals::attested_actor(&admin, &arn, Attest::Created, since).await.expect("LookupEvents");
    assert_eq!(now, None, "not delivered yet: the caller must wait, not trust the request");
    let a = eventually("delivery", Duration::from_secs(30), || async {
        approvals::attested_actor(&admin, &arn, Attest::Created, since).await.expect("LookupEvents")
    })
    .await;
    assert_eq!(a.principal_arn, sandbox().operator("key-admin").expect("seeded").arn);
    set_region_trail_delay(LATE, None).await;
}
