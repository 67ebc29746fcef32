//! CloudTrail in the sandbox, through the real SDK (and once through the AWS CLI): every
//! KMS, Secrets Manager, STS and IAM call that passes the proxy becomes a CloudTrail
//! record, and LookupEvents answers on them as AWS documents it.
//!
//! The tests share one sandbox and run in parallel. LookupEvents is throttled and delayed
//! per region, and answers per region, so each test works in a region of its own (or on
//! a fresh key with a unique name), and every lookup that is not about throttling retries
//! a ThrottlingException after a pause.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudtrail::error::ProvideErrorMetadata;
use aws_sdk_cloudtrail::operation::lookup_events::builders::LookupEventsFluentBuilder;
use aws_sdk_cloudtrail::types::{Event, LookupAttributeKey};
use aws_smithy_types::DateTime;
use common::*;
use keydeck::aws::AwsContext;
use serde_json::Value;

/// A name no other test (or earlier run) uses: usable as an SDK app name (User-Agent
/// `app/...`), an alias, a description or a secret value.
fn marker(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos();
    format!("{tag}-{:x}{:x}-{}", std::process::id(), nanos % 0xffff_ffff_ffff, N.fetch_add(1, Ordering::SeqCst))
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64()
}

/// One page of events.
async fn page(b: &LookupEventsFluentBuilder) -> Vec<Event> {
    send(b).await.expect("LookupEvents").events().to_vec()
}

fn kms_in(ctx: &AwsContext, region: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&config_in(ctx, region))
}

/// A KMS client whose User-Agent carries `app/<app>` (to find its records by userAgent).
fn kms_tagged(ctx: &AwsContext, region: &str, app: &str) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::config::Builder::from(&config_in(ctx, region))
        .app_name(aws_types::app_name::AppName::new(app.to_owned()).expect("valid app name"))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// Create a key as `ctx` in `region`; (key id, key ARN).
async fn new_key(ctx: &AwsContext, region: &str, description: &str) -> (String, String) {
    let out = kms_in(ctx, region).create_key().description(description).send().await.expect("create key");
    let md = out.key_metadata().expect("key metadata");
    (md.key_id().to_owned(), md.arn().expect("key arn").to_owned())
}

#[tokio::test]
async fn an_operators_call_is_recorded_with_their_identity_and_the_key() {
    let info = sandbox();
    let region = "eu-north-1";
    let admin = context("key-admin").await;
    let me = info.operator("key-admin").expect("seeded");
    let ident = keydeck::aws::sts::caller_identity(&admin).await.expect("identity");
    let kms = aws_sdk_kms::Client::new(region_config(&admin, region));
    let desc = marker("ct-identity");
    let (key_id, key_arn) = new_key(&admin, region, &desc).await;
    let alias = format!("alias/{desc}");
    kms.create_alias().alias_name(&alias).target_key_id(&key_id).send().await.expect("create alias");
    kms.describe_key().key_id(&alias).send().await.expect("describe by alias");

    let ct = aws_sdk_cloudtrail::Client::new(region_config(&admin, region));
    let by_key = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, &key_arn));
    let ev = wait_for_event(by_key.clone(), "DescribeKey", |e, _| e.event_name() == Some("DescribeKey")).await;
    assert_eq!(ev.username(), Some("key-admin"));
    assert_eq!(ev.access_key_id(), Some(me.access_key_id.as_str()));
    assert_eq!(ev.event_source(), Some("kms.amazonaws.com"));
    assert_eq!(ev.read_only(), Some("true"));
    assert!(ev
        .resources()
        .iter()
        .any(|r| r.resource_type() == Some("AWS::KMS::Key") && r.resource_name() == Some(key_arn.as_str())));
    let t = ev.event_time().expect("EventTime").as_secs_f64();
    assert!((now_secs() - t).abs() < 120.0, "EventTime {t} is now");

    // The record itself, field by field as in AWS's published KMS examples.
    let r = record(&ev);
    assert_eq!(r["eventVersion"], "1.08");
    let ui = &r["userIdentity"];
    assert_eq!(ui["type"], "IAMUser");
    assert_eq!(ui["principalId"], ident.user_id.as_str(), "principalId is the user id STS reports");
    assert_eq!(ui["arn"], me.arn.as_str());
    assert_eq!(ui["accountId"], info.account_id.as_str());
    assert_eq!(ui["accessKeyId"], me.access_key_id.as_str());
    assert_eq!(ui["userName"], "key-admin");
    let when = r["eventTime"].as_str().expect("eventTime");
    assert!(when.len() == 20 && when.ends_with('Z') && when.as_bytes()[10] == b'T', "ISO 8601 to the second: {when}");
    assert_eq!(
        DateTime::from_str(when, aws_smithy_types::date_time::Format::DateTime).expect("parses").secs(),
        t as i64
    );
    assert_eq!(r["eventSource"], "kms.amazonaws.com");
    assert_eq!(r["eventName"], "DescribeKey");
    assert_eq!(r["awsRegion"], region);
    assert_eq!(r["sourceIPAddress"], "127.0.0.1");
    assert!(r["userAgent"].as_str().is_some_and(|ua| ua.contains("aws-sdk-rust")), "{}", r["userAgent"]);
    assert_eq!(r["requestParameters"], serde_json::json!({ "keyId": alias }));
    assert!(r["responseElements"].is_null(), "reads record no response");
    assert!(r.get("errorCode").is_none());
    assert!(r["requestID"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(r["eventID"], ev.event_id().expect("EventId"));
    assert_eq!(r["readOnly"], true);
    assert_eq!(
        r["resources"],
        serde_json::json!([{ "accountId": info.account_id, "type": "AWS::KMS::Key", "ARN": key_arn }])
    );
    assert_eq!(r["eventType"], "AwsApiCall");
    assert_eq!(r["managementEvent"], true);
    assert_eq!(r["recipientAccountId"], info.account_id.as_str());
    assert_eq!(r["eventCategory"], "Management");
    assert!(r.get("tlsDetails").is_none(), "plain http: no tlsDetails");

    // The writes: CreateKey records the key's metadata, CreateAlias the alias as well.
    let events = all_events(by_key).await;
    let created = events.iter().map(record).find(|r| r["eventName"] == "CreateKey").expect("CreateKey recorded");
    assert_eq!(created["readOnly"], false);
    assert_eq!(created["requestParameters"]["description"], desc.as_str());
    assert_eq!(created["requestParameters"]["keySpec"], "SYMMETRIC_DEFAULT");
    let md = &created["responseElements"]["keyMetadata"];
    assert_eq!(md["keyId"], key_id.as_str());
    assert_eq!(md["arn"], key_arn.as_str());
    assert_eq!(md["AWSAccountId"], info.account_id.as_str());
    assert!(md["creationDate"].as_str().is_some_and(|d| d.ends_with(" AM") || d.ends_with(" PM")), "{md}");
    let aliased = events.iter().map(record).find(|r| r["eventName"] == "CreateAlias").expect("CreateAlias recorded");
    assert_eq!(aliased["requestParameters"], serde_json::json!({ "aliasName": alias, "targetKeyId": key_id }));
    assert_eq!(aliased["responseElements"], serde_json::json!({ "keyId": key_arn }));
    let arns: Vec<&str> =
        aliased["resources"].as_array().expect("resources").iter().filter_map(|x| x["ARN"].as_str()).collect();
    assert_eq!(arns, [key_arn.clone(), format!("arn:aws:kms:{region}:{}:{alias}", info.account_id)]);

    // The file holds exactly what LookupEvents returned, one record a line, owner-only.
    let file = trail_file().await;
    let text = std::fs::read_to_string(&file).expect("trail file");
    assert!(text.lines().any(|l| Some(l) == ev.cloud_trail_event()), "the same record is in {}", file.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn a_denied_call_is_recorded_as_access_denied() {
    let info = sandbox();
    let region = "eu-west-1";
    let admin = context("key-admin").await;
    let outsider = context("outsider").await;
    let (_, key_arn) = new_key(&admin, region, &marker("ct-denied")).await;
    let err = kms_in(&outsider, region).describe_key().key_id(&key_arn).send().await.expect_err("outsider is denied");
    assert_eq!(err.code(), Some("AccessDeniedException"));

    let ct = cloudtrail_client(&admin, region);
    let by_key = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, &key_arn));
    let ev = wait_for_event(by_key.clone(), "denied DescribeKey", |e, _| {
        e.username() == Some("outsider") && e.event_name() == Some("DescribeKey")
    })
    .await;
    let r = record(&ev);
    assert_eq!(r["eventName"], "DescribeKey");
    assert_eq!(r["errorCode"], "AccessDenied", "KMS records denials as AccessDenied");
    let msg = r["errorMessage"].as_str().expect("errorMessage");
    let who =
        format!("User: arn:aws:iam::{}:user/outsider is not authorized to perform: kms:DescribeKey", info.account_id);
    assert!(msg.starts_with(&who), "{msg}");
    assert!(msg.contains(&format!("on resource: {key_arn}")), "{msg}");
    assert!(msg.ends_with("because no identity-based policy allows the kms:DescribeKey action"), "{msg}");
    assert!(r["responseElements"].is_null());
    assert_eq!(r["userIdentity"]["userName"], "outsider");
    assert_eq!(r["requestParameters"]["keyId"], key_arn.as_str());

    // A denied Decrypt names no key, yet the key in the ciphertext is the record's resource.
    let enc = context("app-encrypt").await;
    let plain = aws_sdk_kms::primitives::Blob::new("not a secret");
    let out = kms_in(&enc, region).encrypt().key_id(&key_arn).plaintext(plain).send().await.expect("encrypt");
    let blob = out.ciphertext_blob().expect("ciphertext").clone();
    kms_in(&outsider, region).decrypt().ciphertext_blob(blob).send().await.expect_err("outsider may not decrypt");
    let ev = wait_for_event(by_key, "denied Decrypt", |e, _| e.event_name() == Some("Decrypt")).await;
    let r = record(&ev);
    assert_eq!(r["errorCode"], "AccessDenied");
    assert_eq!(r["userIdentity"]["userName"], "outsider");
    assert_eq!(r["requestParameters"]["keyId"], key_arn.as_str());
    assert_eq!(r["requestParameters"]["encryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    assert!(r["errorMessage"].as_str().is_some_and(|m| m.contains("kms:Decrypt on resource: ")), "{r}");

    // LookupEvents itself needs cloudtrail:LookupEvents; the refusal is recorded too.
    let denied = cloudtrail_client(&outsider, region).lookup_events().send().await.expect_err("outsider may not look");
    assert_eq!(denied.code(), Some("AccessDeniedException"));
    assert!(denied.message().unwrap_or("").contains("cloudtrail:LookupEvents"), "{:?}", denied.message());
    let by_user = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::Username, "outsider"));
    let ev = wait_for_event(by_user, "denied LookupEvents", |e, _| e.event_name() == Some("LookupEvents")).await;
    let r = record(&ev);
    assert_eq!(r["eventSource"], "cloudtrail.amazonaws.com");
    assert_eq!(r["errorCode"], "AccessDenied");
    assert_eq!(r["awsRegion"], region);
}

#[tokio::test]
async fn no_record_anywhere_contains_a_secret_value() {
    let region = "eu-north-1";
    let lead = context("security-lead").await;
    let admin = context("key-admin").await;
    let enc = context("app-encrypt").await;
    let runner = context("app-runner").await;
    let secret_value = marker("s3cr3t-value");
    let plaintext = marker("plain-text");
    let token = format!("{:0>40}", marker("tok").replace('-', ""));
    let ctx_marker = marker("ctx");

    // Secrets Manager: a new value (security-lead may), and a refused CreateSecret with a value.
    let sm = aws_sdk_secretsmanager::Client::new(region_config(&lead, region));
    sm.put_secret_value()
        .secret_id("BANKID_CLIENT_SECRET")
        .secret_string(&secret_value)
        .client_request_token(&token)
        .send()
        .await
        .expect("security-lead puts a secret value");
    let secret_name = marker("ct-secret");
    let denied = aws_sdk_secretsmanager::Client::new(region_config(&admin, region))
        .create_secret()
        .name(&secret_name)
        .secret_string(&secret_value)
        .send()
        .await
        .expect_err("key-admin may not create secrets");
    assert_eq!(denied.code(), Some("AccessDeniedException"));
    // KMS: Encrypt a random plaintext, decrypt it again, and make a data key.
    let kms = aws_sdk_kms::Client::new(region_config(&enc, region));
    let encrypted = kms
        .encrypt()
        .key_id("alias/drop-national-id-key")
        .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext.as_bytes()))
        .encryption_context("ct-marker", &ctx_marker)
        .send()
        .await
        .expect("app-encrypt encrypts");
    let blob = encrypted.ciphertext_blob().expect("ciphertext").clone();
    let data_key = kms
        .generate_data_key()
        .key_id("alias/drop-national-id-key")
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .send()
        .await
        .expect("data key");
    let data_key_plain = data_key.plaintext().expect("plaintext data key").as_ref().to_vec();
    let decrypted = aws_sdk_kms::Client::new(region_config(&runner, region))
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("ct-marker", &ctx_marker)
        .send()
        .await
        .expect("app-runner decrypts");
    assert_eq!(decrypted.plaintext().expect("plaintext").as_ref(), plaintext.as_bytes());

    // The calls are recorded (so the search below is not vacuous), without their secrets.
    let ct = aws_sdk_cloudtrail::Client::new(region_config(&lead, region));
    let put = wait_for_event(
        ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::EventName, "PutSecretValue")),
        "PutSecretValue",
        |_, r| r["requestParameters"]["clientRequestToken"] == token.as_str(),
    )
    .await;
    let r = record(&put);
    assert_eq!(r["requestParameters"]["secretId"], "BANKID_CLIENT_SECRET");
    assert!(r["requestParameters"].get("secretString").is_none(), "{r}");
    assert_eq!(r["responseElements"]["versionId"], token.as_str());
    let enc_ev = wait_for_event(
        ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::EventName, "Encrypt")),
        "Encrypt",
        |_, r| r["requestParameters"]["encryptionContext"]["ct-marker"] == ctx_marker.as_str(),
    )
    .await;
    let r = record(&enc_ev);
    assert_eq!(r["requestParameters"]["encryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    assert!(r["responseElements"].is_null(), "Encrypt records no response");
    wait_for_event(
        ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::EventName, "Decrypt")),
        "Decrypt",
        |_, r| r["requestParameters"]["encryptionContext"]["ct-marker"] == ctx_marker.as_str(),
    )
    .await;
    wait_for_event(
        ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::EventName, "CreateSecret")),
        "CreateSecret",
        |_, r| r["requestParameters"]["name"] == secret_name.as_str() && r["errorCode"] == "AccessDenied",
    )
    .await;

    let b64 = aws_smithy_types::base64::encode;
    let forbidden = [
        ("secret value", secret_value.clone()),
        ("secret value, base64", b64(secret_value.as_bytes())),
        ("plaintext", plaintext.clone()),
        ("plaintext, base64", b64(plaintext.as_bytes())),
        ("ciphertext, base64", b64(blob.as_ref())),
        ("data key, base64", b64(&data_key_plain)),
    ];
    let mut looked = 0;
    for e in all_events(ct.lookup_events().max_results(50)).await {
        let text = e.cloud_trail_event().expect("CloudTrailEvent");
        for (what, needle) in &forbidden {
            assert!(!text.contains(needle.as_str()), "LookupEvents record {:?} contains the {what}", e.event_id());
        }
        looked += 1;
    }
    assert!(looked >= 5, "searched {looked} records");
    let file = std::fs::read_to_string(trail_file().await).expect("trail file");
    for (what, needle) in &forbidden {
        assert!(!file.contains(needle.as_str()), "the trail file contains the {what}");
    }
}

#[tokio::test]
async fn every_lookup_attribute_filters() {
    let region = "eu-central-1";
    let admin = context("key-admin").await;
    let lead = context("security-lead").await;
    let outsider = context("outsider").await;
    let lead_key = sandbox().operator("security-lead").expect("seeded").access_key_id.clone();
    let (_, key_arn) = new_key(&admin, region, &marker("ct-attrs")).await;
    kms_in(&admin, region).describe_key().key_id(&key_arn).send().await.expect("describe");
    kms_in(&lead, region).describe_key().key_id(&key_arn).send().await.expect("describe");
    kms_in(&outsider, region).describe_key().key_id(&key_arn).send().await.expect_err("denied");
    aws_sdk_sts::Client::new(&config_in(&lead, region)).get_caller_identity().send().await.expect("sts");

    let ct = cloudtrail_client(&admin, region);
    let q = |k: LookupAttributeKey, v: &str| ct.lookup_events().lookup_attributes(attr(k, v));
    // Everything in this region is this test's: 5 events, none of them late (no delay).
    let everything =
        wait_for_event(ct.lookup_events(), "GetCallerIdentity", |e, _| e.event_name() == Some("GetCallerIdentity"))
            .await;
    assert_eq!(everything.username(), Some("security-lead"));
    let all = all_events(ct.lookup_events()).await;
    assert_eq!(all.len(), 5, "{:?}", all.iter().map(|e| e.event_name()).collect::<Vec<_>>());
    let names = |evs: &[Event]| {
        let mut v: Vec<String> = evs.iter().map(|e| e.event_name().unwrap_or("").to_owned()).collect();
        v.sort();
        v
    };

    let one = &all[2];
    let got = all_events(q(LookupAttributeKey::EventId, one.event_id().expect("id"))).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id(), one.event_id());

    assert_eq!(names(&all_events(q(LookupAttributeKey::EventName, "DescribeKey")).await), ["DescribeKey"; 3]);
    assert_eq!(names(&all_events(q(LookupAttributeKey::EventName, "CreateKey")).await), ["CreateKey"]);
    assert_eq!(
        names(&all_events(q(LookupAttributeKey::EventSource, "sts.amazonaws.com")).await),
        ["GetCallerIdentity"]
    );
    assert_eq!(all_events(q(LookupAttributeKey::EventSource, "kms.amazonaws.com")).await.len(), 4);
    let ro = all_events(q(LookupAttributeKey::ReadOnly, "true")).await;
    assert_eq!(names(&ro), ["DescribeKey", "DescribeKey", "DescribeKey", "GetCallerIdentity"]);
    assert!(ro.iter().all(|e| e.read_only() == Some("true")));
    assert_eq!(names(&all_events(q(LookupAttributeKey::ReadOnly, "false")).await), ["CreateKey"]);
    assert_eq!(
        names(&all_events(q(LookupAttributeKey::Username, "security-lead")).await),
        ["DescribeKey", "GetCallerIdentity"]
    );
    assert_eq!(names(&all_events(q(LookupAttributeKey::Username, "outsider")).await), ["DescribeKey"]);
    let by_key = all_events(q(LookupAttributeKey::AccessKeyId, &lead_key)).await;
    assert_eq!(by_key.len(), 2);
    assert!(by_key.iter().all(|e| e.access_key_id() == Some(lead_key.as_str())));
    assert_eq!(all_events(q(LookupAttributeKey::ResourceType, "AWS::KMS::Key")).await.len(), 4);
    let on_key = all_events(q(LookupAttributeKey::ResourceName, &key_arn)).await;
    assert_eq!(names(&on_key), ["CreateKey", "DescribeKey", "DescribeKey", "DescribeKey"]);
    assert!(all_events(q(LookupAttributeKey::ResourceName, &format!("{key_arn}0"))).await.is_empty());

    // One attribute per request, of the documented keys, as AWS allows.
    let two = send(
        &ct.lookup_events()
            .lookup_attributes(attr(LookupAttributeKey::Username, "outsider"))
            .lookup_attributes(attr(LookupAttributeKey::EventName, "DescribeKey")),
    )
    .await
    .expect_err("two attributes");
    assert_eq!(two.code(), Some("InvalidLookupAttributesException"));
    let bogus = send(&q(LookupAttributeKey::from("Bogus"), "x")).await.expect_err("unknown attribute");
    assert_eq!(bogus.code(), Some("InvalidLookupAttributesException"));
}

#[tokio::test]
async fn time_range_max_results_and_token_errors() {
    let region = "sa-east-1";
    let admin = context("key-admin").await;
    let (key_id, key_arn) = new_key(&admin, region, &marker("ct-time")).await;
    let ct = cloudtrail_client(&admin, region);
    let on_key = || ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, &key_arn));
    let a = wait_for_event(on_key(), "CreateKey", |e, _| e.event_name() == Some("CreateKey")).await;
    let ta = a.event_time().expect("time").secs();
    // The next call lands in a later second: wait for the clock to pass ta's second.
    let deadline = Instant::now() + Duration::from_secs(5);
    while now_secs() < ta as f64 + 1.05 {
        assert!(Instant::now() < deadline, "the clock does not move");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kms_in(&admin, region).describe_key().key_id(&key_id).send().await.expect("describe");
    let b = wait_for_event(on_key(), "DescribeKey", |e, _| e.event_name() == Some("DescribeKey")).await;
    let tb = b.event_time().expect("time").secs();
    assert!(tb > ta, "{tb} > {ta}");
    let ids = |evs: Vec<Event>| evs.iter().filter_map(|e| e.event_id().map(str::to_owned)).collect::<Vec<_>>();
    let (ida, idb) = (a.event_id().expect("id").to_owned(), b.event_id().expect("id").to_owned());
    let secs = |t: f64| DateTime::from_secs_f64(t);

    // Newest first; StartTime and EndTime are inclusive bounds on EventTime (fractional too).
    assert_eq!(ids(all_events(on_key()).await), [idb.as_str(), ida.as_str()]);
    assert_eq!(ids(all_events(on_key().start_time(secs(tb as f64 - 0.5))).await), [idb.as_str()]);
    assert_eq!(ids(all_events(on_key().end_time(secs(ta as f64 + 0.5))).await), [ida.as_str()]);
    assert_eq!(
        ids(all_events(on_key().start_time(secs(ta as f64)).end_time(secs(tb as f64))).await),
        [idb.as_str(), ida.as_str()]
    );
    assert!(all_events(on_key().start_time(secs(tb as f64 + 3600.0))).await.is_empty());
    let e = send(&on_key().start_time(secs(tb as f64)).end_time(secs(ta as f64))).await.expect_err("reversed range");
    assert_eq!(e.code(), Some("InvalidTimeRangeException"));

    for bad in [0, 51] {
        let e = send(&on_key().max_results(bad)).await.expect_err("MaxResults out of range");
        assert_eq!(e.code(), Some("InvalidMaxResultsException"), "MaxResults {bad}");
    }
    let e = send(&on_key().next_token("not-a-token")).await.expect_err("bad token");
    assert_eq!(e.code(), Some("InvalidNextTokenException"));
    let first = send(&on_key().max_results(1)).await.expect("page 1");
    let token = first.next_token().expect("a second page").to_owned();
    let e = send(&ct.lookup_events().max_results(1).next_token(&token)).await.expect_err("token of another query");
    assert_eq!(e.code(), Some("InvalidNextTokenException"));
    let second = send(&on_key().max_results(1).next_token(&token)).await.expect("page 2");
    assert_eq!(ids(second.events().to_vec()), [ida.as_str()]);
    assert!(second.next_token().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_is_stable_while_events_keep_arriving() {
    let region = "ap-northeast-1";
    let admin = context("key-admin").await;
    let (key_id, key_arn) = new_key(&admin, region, &marker("ct-paging")).await;
    let kms = kms_in(&admin, region);
    for _ in 0..7 {
        kms.describe_key().key_id(&key_id).send().await.expect("describe");
    }
    let ct = cloudtrail_client(&admin, region);
    let on_key = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, &key_arn));
    let before: HashSet<String> =
        all_events(on_key.clone()).await.iter().filter_map(|e| e.event_id().map(str::to_owned)).collect();
    assert_eq!(before.len(), 8, "CreateKey and 7 DescribeKey");

    // A background caller keeps adding events on the same key while we page.
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicUsize::new(0));
    let bg = {
        let (stop, made, kms, key_id) = (stop.clone(), made.clone(), kms.clone(), key_id.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                kms.describe_key().key_id(&key_id).send().await.expect("background describe");
                made.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(40)).await; // pacing, not synchronisation
            }
        })
    };
    let wait_for_more = |n: usize| {
        let made = made.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while made.load(Ordering::SeqCst) < n {
                assert!(Instant::now() < deadline, "the background caller is stuck");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for_more(1).await;
    let mut pages: Vec<Vec<Event>> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = send(&on_key.clone().max_results(3).set_next_token(token.clone())).await.expect("page");
        pages.push(out.events().to_vec());
        token = out.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
        // New events arrive between every two pages.
        wait_for_more(made.load(Ordering::SeqCst) + 2).await;
    }
    stop.store(true, Ordering::SeqCst);
    bg.await.expect("background task");

    let seen: Vec<&Event> = pages.iter().flatten().collect();
    let ids: Vec<&str> = seen.iter().filter_map(|e| e.event_id()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert!(pages.len() >= 3, "{} pages", pages.len());
    assert!(pages.iter().all(|p| p.len() <= 3));
    assert_eq!(unique.len(), ids.len(), "an event repeated across pages: {ids:?}");
    for id in &before {
        assert!(unique.contains(id.as_str()), "event {id} skipped while paging");
    }
    let times: Vec<i64> = seen.iter().map(|e| e.event_time().expect("time").secs()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    // Events did arrive meanwhile: the history now holds more than was paged.
    let now = all_events(on_key.clone()).await;
    assert!(now.len() > unique.len(), "{} events now, {} paged", now.len(), unique.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_is_throttled_at_two_requests_a_second_per_region() {
    let region = "ap-southeast-2";
    let admin = context("key-admin").await;
    let conf = aws_sdk_cloudtrail::config::Builder::from(&config_in(&admin, region))
        .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        .build();
    let ct = aws_sdk_cloudtrail::Client::from_conf(conf);
    let t0 = Instant::now();
    let burst = futures::future::join_all((0..12).map(|_| ct.lookup_events().max_results(1).send())).await;
    let took = t0.elapsed().as_secs_f64();
    let ok = burst.iter().filter(|r| r.is_ok()).count();
    let throttled: Vec<_> = burst.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(ok >= 1, "the first requests of a burst are answered");
    // At most 2 up front plus 2 a second while the burst lasted (+1 for a refill at the edge).
    assert!(ok as f64 <= 3.0 + 2.0 * took, "{ok} of 12 answered in {took:.2} s");
    assert!(!throttled.is_empty(), "{ok} answered, none refused");
    for e in &throttled {
        assert_eq!(e.code(), Some("ThrottlingException"), "{e:?}");
        assert_eq!(e.message(), Some("Rate exceeded"));
        assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    }
    // Other regions have their own budget.
    cloudtrail_client(&admin, "ap-southeast-1").lookup_events().send().await.expect("another region is not throttled");
    // The budget refills: once a request goes through, one every 600 ms always does.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ct.lookup_events().send().await.is_err() {
        assert!(Instant::now() < deadline, "still throttled after 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await; // pacing below the limit
        ct.lookup_events().send().await.expect("a paced request is never throttled");
    }
}

#[tokio::test]
async fn the_delivery_delay_hides_fresh_events() {
    let region = "us-west-2";
    let delay = 4.0;
    set_region_trail_delay(region, Some(delay)).await;
    let (status, _, body) = sandbox_http("GET", "/_sandbox/trail-delay", &[], b"").await;
    assert_eq!(status, 200);
    let delays: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(delays["regions"][region], delay);
    let admin = context("key-admin").await;
    let before = now_secs();
    let (_, key_arn) = new_key(&admin, region, &marker("ct-delay")).await;
    let ct = cloudtrail_client(&admin, region);
    let on_key = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, &key_arn));
    let early = page(&on_key).await;
    let elapsed = now_secs() - before;
    assert!(elapsed < delay - 1.0, "the machine is too slow to see the delay ({elapsed:.1} s)");
    assert!(early.is_empty(), "visible {elapsed:.1} s after the call, before the {delay} s delay");
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen_at = loop {
        let evs = page(&on_key).await;
        if !evs.is_empty() {
            break now_secs();
        }
        assert!(Instant::now() < deadline, "not delivered within 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await; // poll interval under the 2/s limit
    };
    assert!(seen_at - before >= delay - 0.05, "delivered after {:.2} s", seen_at - before);
    set_region_trail_delay(region, None).await;
    // Without the override the region is back to the default (0 here): a new call shows at once.
    let (_, key2) = new_key(&admin, region, &marker("ct-delay-off")).await;
    let on_key2 = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, &key2));
    assert_eq!(page(&on_key2).await.len(), 1);

    // Bad control requests are refused and change nothing.
    for bad in [&b"-1"[..], b"\"soon\"", b"{\"seconds\": 1e9}", b"{"] {
        let (status, _, _) = sandbox_http("POST", "/_sandbox/trail-delay", &[], bad).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(bad));
    }
}

#[tokio::test]
async fn the_aws_cli_finds_an_event_by_user_name() {
    let info = sandbox();
    let region = "ca-central-1";
    let admin = context("key-admin").await;
    let desc = marker("ct-cli");
    let (_, key_arn) = new_key(&admin, region, &desc).await;
    let exports = info.env_exports("key-admin").expect("exports");
    let home = temp_dir("ct-cli");
    let script = format!(
        "{exports}\nexport AWS_REGION={region} AWS_DEFAULT_REGION={region}\n\
         aws cloudtrail lookup-events --lookup-attributes AttributeKey=Username,AttributeValue=key-admin \
         --max-results 50 --no-paginate --output json"
    );
    let out = std::process::Command::new("sh").arg("-c").arg(&script).env("HOME", &home).output().expect("sh");
    assert!(out.status.success(), "aws cli failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("the CLI prints JSON");
    let events = v["Events"].as_array().expect("Events");
    let ev = events
        .iter()
        .find(|e| e["Resources"].as_array().is_some_and(|rs| rs.iter().any(|r| r["ResourceName"] == key_arn.as_str())))
        .unwrap_or_else(|| panic!("CreateKey of {key_arn} not in {v}"));
    assert_eq!(ev["EventName"], "CreateKey");
    assert_eq!(ev["Username"], "key-admin");
    let rec: Value = serde_json::from_str(ev["CloudTrailEvent"].as_str().expect("CloudTrailEvent")).expect("JSON");
    assert_eq!(rec["requestParameters"]["description"], desc.as_str());
    assert_eq!(rec["awsRegion"], region);
}

#[tokio::test]
async fn bad_input_never_breaks_the_recorder() {
    let region = "eu-north-1";
    let admin = context("key-admin").await;
    let by_agent = |records: &[Value], m: &str| -> Vec<Value> {
        records.iter().filter(|r| r["userAgent"].as_str().is_some_and(|ua| ua.contains(m))).cloned().collect()
    };

    // 1. Unsigned: refused as AWS does; recorded with an Unknown identity.
    let m_unsigned = marker("ct-unsigned");
    let (status, _, body) = sandbox_http(
        "POST",
        "/",
        &[
            ("X-Amz-Target", "TrentService.ListKeys"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("User-Agent", m_unsigned.as_str()),
        ],
        b"{}",
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("MissingAuthenticationTokenException"));

    // 2. An access key the account does not have.
    let m_unknown = marker("ct-unknown-key");
    let stranger = AwsContext::connect(&with_keys("AKIAIOSFODNN7NOTREAL", &"x".repeat(40))).await.expect("context");
    let e = kms_tagged(&stranger, region, &m_unknown).list_keys().send().await.expect_err("unknown key refused");
    assert_eq!(e.code(), Some("UnrecognizedClientException"));

    // 3. A signed request whose body is not JSON: moto judges it (ListKeys ignores it).
    let m_json = marker("ct-bad-json");
    kms_tagged(&admin, region, &m_json)
        .list_keys()
        .customize()
        .mutate_request(|req| {
            *req.body_mut() = aws_smithy_types::body::SdkBody::from("{not json");
            req.headers_mut().insert("content-length", "9");
        })
        .send()
        .await
        .expect("moto answers ListKeys whatever the body");

    // 4. An X-Amz-Target naming no KMS operation: answered, and not an event (no such API).
    let m_target = marker("ct-bad-target");
    let e = kms_tagged(&admin, region, &m_target)
        .list_keys()
        .customize()
        .mutate_request(|req| {
            req.headers_mut().insert("x-amz-target", "TrentService.NoSuchOperation");
        })
        .send()
        .await
        .expect_err("no such operation");
    assert!(e.as_service_error().is_some() || e.raw_response().is_some(), "answered over HTTP: {e:?}");

    // 5. A 1 MB body: forwarded and answered; the record leaves the huge parameter out.
    let m_big = marker("ct-big-body");
    let big = format!("{{\"KeyId\": \"{}\"}}", "k".repeat(1024 * 1024));
    let e = kms_tagged(&admin, region, &m_big)
        .describe_key()
        .key_id("placeholder")
        .customize()
        .mutate_request(move |req| {
            let len = big.len().to_string();
            *req.body_mut() = aws_smithy_types::body::SdkBody::from(big.clone());
            req.headers_mut().insert("content-length", len);
        })
        .send()
        .await
        .expect_err("no such key");
    assert_eq!(e.code(), Some("NotFoundException"));

    // Still serving: a normal call works and the sandbox answers its own endpoints.
    kms_in(&admin, region).list_keys().send().await.expect("a normal call afterwards");
    let (status, _, _) = sandbox_http("GET", "/_sandbox/stats", &[], b"").await;
    assert_eq!(status, 200);

    // What was recorded (each record is written before its caller gets the answer).
    let records = trail_records().await;
    let r = by_agent(&records, &m_unsigned);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["userIdentity"], serde_json::json!({ "type": "Unknown" }));
    assert_eq!(r[0]["eventName"], "ListKeys");
    assert_eq!(r[0]["eventSource"], "kms.amazonaws.com");
    assert_eq!(r[0]["errorCode"], "MissingAuthenticationTokenException");
    assert_eq!(r[0]["awsRegion"], region, "no credential scope: the sandbox's home region");

    let r = by_agent(&records, &m_unknown);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["userIdentity"], serde_json::json!({ "type": "Unknown", "accessKeyId": "AKIAIOSFODNN7NOTREAL" }));
    assert_eq!(r[0]["errorCode"], "UnrecognizedClientException");
    assert_eq!(r[0]["errorMessage"], "The security token included in the request is invalid.");

    let r = by_agent(&records, &m_json);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["eventName"], "ListKeys");
    assert_eq!(r[0]["userIdentity"]["userName"], "key-admin");
    assert!(r[0]["requestParameters"].is_null(), "an unparseable body records no parameters");
    assert!(r[0].get("errorCode").is_none());

    assert!(by_agent(&records, &m_target).is_empty(), "an unknown operation is no CloudTrail event");

    let r = by_agent(&records, &m_big);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["eventName"], "DescribeKey");
    assert_eq!(r[0]["errorCode"], "NotFoundException");
    assert!(r[0]["requestParameters"].is_null(), "a 1 MB parameter is not copied into the record");
    assert!(r[0]["errorMessage"].as_str().is_some_and(|m| m.len() < 2048));
    assert!(r[0].to_string().len() < 8192, "the record stays small");
}

#[tokio::test]
async fn demo_traffic_fills_the_history_within_seconds() {
    use keydeck::sandbox::{Sandbox, StartOptions};
    let dir = temp_dir("ct-demo");
    let sb = Sandbox::start(&dir, &StartOptions { trail_delay_secs: 3.0, traffic: true, ..StartOptions::default() })
        .await
        .expect("demo sandbox starts");
    let started = Instant::now();
    let auditor =
        AwsContext::connect(&sb.info.connect_options("key-auditor", &[]).expect("operator")).await.expect("context");
    let ct = aws_sdk_cloudtrail::Client::new(region_config(&auditor, "eu-north-1"));
    let events = loop {
        let evs = page(&ct.lookup_events()).await;
        if !evs.is_empty() {
            break evs;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no traffic in the history after 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await; // poll interval under the 2/s limit
    };
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(15), "history empty for {waited:?}");
    let traffic_users = ["app-encrypt", "app-runner", "compliance-decrypt", "key-auditor", "outsider"];
    assert!(events.iter().all(|e| e.username().is_some_and(|u| traffic_users.contains(&u))), "{events:?}");
    sb.stop().await;
}
