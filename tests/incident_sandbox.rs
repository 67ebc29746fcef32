//! The sandbox is ready for the guided emergency revocation (004 §4.7, §6, §10): the
//! security lead can run every step of the key-compromise and JWT_SECRET runbooks and
//! never reads a secret or decrypts; the key-admin signs the incident-log anchor but
//! cannot disable keys; the anchor key signs digests as KMS does; the incident topic
//! takes the security lead's notifications; the applications' data stored before the
//! incident cannot be decrypted once its key is disabled.
//!
//! This binary has its own sandbox (one per test binary): one test disables the seeded
//! drop-kyc-key, which no other test here depends on. The other tests make their own keys.

mod common;

use aws_sdk_cloudtrail::types::LookupAttributeKey;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use aws_sdk_kms::Client;
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const REGION: &str = "eu-north-1";
const ANCHOR: &str = "alias/keydeck-incident-anchor";

async fn kms(operator: &str) -> Client {
    Client::new(region_config(&context(operator).await, REGION))
}

async fn secrets(operator: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(region_config(&context(operator).await, REGION))
}

fn denied<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(what: &str, r: Result<T, E>, action: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.code(), Some("AccessDeniedException"), "{what}: {e:?}");
    assert!(e.message().is_some_and(|m| m.contains(action)), "{what}: {e:?}");
}

fn topic_arn(name: &str) -> String {
    format!("arn:aws:sns:{REGION}:{}:{name}", sandbox().account_id)
}

#[tokio::test]
async fn the_security_lead_can_run_the_key_compromise_runbook() {
    let lead = kms("security-lead").await;
    let app = kms("app-encrypt").await;
    // A compromised key in use: an alias the application names, data encrypted under it.
    let old = lead.create_key().description("incident test: compromised").send().await.expect("CreateKey");
    let old = old.key_metadata().expect("metadata").clone();
    let alias = "alias/incident-test-app-key";
    lead.create_alias().alias_name(alias).target_key_id(old.key_id()).send().await.expect("CreateAlias");
    let blob = app
        .encrypt()
        .key_id(alias)
        .plaintext(Blob::new("19128012345"))
        .send()
        .await
        .expect("the application encrypts")
        .ciphertext_blob()
        .expect("ciphertext")
        .clone();

    // Step 3: disable (and, if it was a false alarm, enable again).
    lead.disable_key().key_id(old.key_id()).send().await.expect("DisableKey");
    lead.enable_key().key_id(old.key_id()).send().await.expect("EnableKey");
    lead.disable_key().key_id(old.key_id()).send().await.expect("DisableKey again");
    // Scope: who may use it (grants, key policy), what it is.
    lead.list_grants().key_id(old.key_id()).send().await.expect("ListGrants");
    lead.get_key_policy().key_id(old.key_id()).send().await.expect("GetKeyPolicy");
    lead.describe_key().key_id(alias).send().await.expect("DescribeKey");
    lead.list_resource_tags().key_id(old.key_id()).send().await.expect("ListResourceTags");
    lead.list_aliases().key_id(old.key_id()).send().await.expect("ListAliases");
    let revoke = lead.revoke_grant().key_id(old.key_id()).grant_id("0".repeat(64)).send().await;
    if let Err(e) = &revoke {
        assert_ne!(e.code(), Some("AccessDeniedException"), "RevokeGrant is allowed: {e:?}");
    }
    lead.tag_resource()
        .key_id(old.key_id())
        .tags(aws_sdk_kms::types::Tag::builder().tag_key("incident").tag_value("INC-test").build().expect("tag"))
        .send()
        .await
        .expect("TagResource");

    // Step 4: the replacement key, with rotation on and the old key's policy.
    let new = lead.create_key().description("incident test: replacement").send().await.expect("CreateKey");
    let new = new.key_metadata().expect("metadata").clone();
    lead.enable_key_rotation().key_id(new.key_id()).send().await.expect("EnableKeyRotation");
    let policy = lead.get_key_policy().key_id(new.key_id()).send().await.expect("GetKeyPolicy");
    lead.put_key_policy()
        .key_id(new.key_id())
        .policy(policy.policy().expect("a key policy"))
        .send()
        .await
        .expect("PutKeyPolicy");

    // Step 5: re-encrypt under the replacement without the plaintext ever leaving KMS. The
    // source key is disabled: KMS refuses, so the lead enables it for the re-encryption.
    let refused = lead.re_encrypt().ciphertext_blob(blob.clone()).destination_key_id(new.key_id()).send().await;
    assert_eq!(refused.expect_err("source disabled").code(), Some("DisabledException"));
    lead.enable_key().key_id(old.key_id()).send().await.expect("EnableKey for the re-encryption");
    let re = lead
        .re_encrypt()
        .ciphertext_blob(blob)
        .destination_key_id(new.key_id())
        .send()
        .await
        .expect("ReEncrypt (ReEncryptFrom + ReEncryptTo)");
    assert_eq!(re.key_id(), new.arn());
    assert_eq!(re.source_key_id(), old.arn());
    lead.disable_key().key_id(old.key_id()).send().await.expect("DisableKey after re-encryption");

    // Step 6: the application's alias now names the replacement.
    lead.update_alias().alias_name(alias).target_key_id(new.key_id()).send().await.expect("UpdateAlias");
    let now = lead.describe_key().key_id(alias).send().await.expect("DescribeKey");
    assert_eq!(now.key_metadata().map(|m| m.key_id()), Some(new.key_id()));
}

#[tokio::test]
async fn the_security_lead_never_reads_a_secret_or_decrypts_but_rotates_jwt_secret() {
    let lead_sm = secrets("security-lead").await;
    denied(
        "GetSecretValue",
        lead_sm.get_secret_value().secret_id("JWT_SECRET").send().await,
        "secretsmanager:GetSecretValue",
    );
    let lead = kms("security-lead").await;
    let blob = kms("app-encrypt")
        .await
        .encrypt()
        .key_id("alias/scratch-test-key")
        .plaintext(Blob::new("x"))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .expect("ciphertext")
        .clone();
    denied("Decrypt", lead.decrypt().ciphertext_blob(blob).send().await, "kms:Decrypt");

    // 004 §4.7, JWT_SECRET emergency rotation: a new value made and stored by Secrets
    // Manager, staged, then made current, without the old or new value passing through.
    let secret = "JWT_SECRET";
    lead_sm.describe_secret().secret_id(secret).send().await.expect("DescribeSecret");
    let before = lead_sm.list_secret_version_ids().secret_id(secret).send().await.expect("ListSecretVersionIds");
    let current = before
        .versions()
        .iter()
        .find(|v| v.version_stages().iter().any(|s| s == "AWSCURRENT"))
        .and_then(|v| v.version_id())
        .expect("a current version")
        .to_owned();
    let password = lead_sm
        .get_random_password()
        .password_length(64)
        .exclude_punctuation(true)
        .send()
        .await
        .expect("GetRandomPassword");
    let put = lead_sm
        .put_secret_value()
        .secret_id(secret)
        .secret_string(password.random_password().expect("a password"))
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("PutSecretValue");
    let pending = put.version_id().expect("the new version").to_owned();
    lead_sm
        .update_secret_version_stage()
        .secret_id(secret)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&pending)
        .remove_from_version_id(&current)
        .send()
        .await
        .expect("UpdateSecretVersionStage");
    let after = lead_sm.list_secret_version_ids().secret_id(secret).send().await.expect("ListSecretVersionIds");
    let stages_of = |id: &str| -> Vec<String> {
        after
            .versions()
            .iter()
            .find(|v| v.version_id() == Some(id))
            .map(|v| v.version_stages().to_vec())
            .unwrap_or_default()
    };
    assert!(stages_of(&pending).contains(&"AWSCURRENT".to_owned()), "{after:?}");
    assert!(!stages_of(&current).contains(&"AWSCURRENT".to_owned()), "{after:?}");
    lead_sm.rotate_secret().secret_id(secret).rotate_immediately(false).send().await.map(|_| ()).unwrap_or_else(|e| {
        assert_ne!(e.code(), Some("AccessDeniedException"), "RotateSecret is allowed: {e:?}");
    });
}

#[tokio::test]
async fn the_key_admin_signs_the_anchor_but_cannot_disable_keys() {
    // 004 §4.5: the key-admin creates and administers keys and never decrypts; §6: the
    // emergency disable is the Security Lead's. Every operator's journal is anchored.
    let admin = kms("key-admin").await;
    let digest = Sha256::digest(b"key-admin journal head").to_vec();
    let signed = admin
        .sign()
        .key_id(ANCHOR)
        .message(Blob::new(digest.clone()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .expect("the key-admin signs its journal's head");
    let ok = admin
        .verify()
        .key_id(ANCHOR)
        .message(Blob::new(digest))
        .message_type(MessageType::Digest)
        .signature(signed.signature().expect("signature").clone())
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .expect("Verify");
    assert!(ok.signature_valid());
    let own = admin.create_key().description("incident test: key-admin's key").send().await.expect("CreateKey");
    let own = own.key_metadata().expect("metadata").key_id().to_owned();
    denied("DisableKey", admin.disable_key().key_id(&own).send().await, "kms:DisableKey");
    denied(
        "CreateGrant",
        admin
            .create_grant()
            .key_id(&own)
            .grantee_principal(sandbox().operator("app-runner").expect("seeded").arn.clone())
            .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
            .send()
            .await,
        "kms:CreateGrant",
    );
}

#[tokio::test]
async fn the_anchor_key_signs_digests_as_kms_does() {
    let lead = kms("security-lead").await;
    let md = lead.describe_key().key_id(ANCHOR).send().await.expect("DescribeKey");
    let md = md.key_metadata().expect("metadata");
    assert_eq!(md.key_spec(), Some(&KeySpec::EccNistP256));
    assert_eq!(md.key_usage(), Some(&KeyUsageType::SignVerify));
    assert_eq!(md.signing_algorithms(), [SigningAlgorithmSpec::EcdsaSha256]);
    assert!(md.description().is_some_and(|d| d.contains("incident-log anchor")), "{md:?}");
    assert!(md.arn().is_some_and(|a| a.contains(":eu-north-1:")));

    let head = b"prev=0000 seq=42 step=DisableKey";
    let digest = Sha256::digest(head).to_vec();
    let sign = |d: Vec<u8>| {
        lead.sign()
            .key_id(ANCHOR)
            .message(Blob::new(d))
            .message_type(MessageType::Digest)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
    };
    let signed = sign(digest.clone()).await.expect("Sign DIGEST");
    assert_eq!(signed.key_id(), md.arn());
    let signature = signed.signature().expect("signature").clone();
    let verify = |message: Vec<u8>, kind: MessageType| {
        lead.verify()
            .key_id(ANCHOR)
            .message(Blob::new(message))
            .message_type(kind)
            .signature(signature.clone())
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
    };
    assert!(verify(digest.clone(), MessageType::Digest).await.expect("Verify DIGEST").signature_valid());
    // KMS signs the digest itself: the same signature verifies over the message it hashes.
    assert!(verify(head.to_vec(), MessageType::Raw).await.expect("Verify RAW").signature_valid());
    // An invalid signature is an error in KMS, never SignatureValid false.
    let wrong = verify(Sha256::digest(b"tampered").to_vec(), MessageType::Digest).await.expect_err("wrong digest");
    assert_eq!(wrong.code(), Some("KMSInvalidSignatureException"), "{wrong:?}");
    assert_eq!(wrong.raw_response().map(|r| r.status().as_u16()), Some(400));
    // A DIGEST must be as long as the algorithm's hash.
    let short = sign(digest[..20].to_vec()).await.expect_err("short digest");
    assert_eq!(short.code(), Some("ValidationException"), "{short:?}");
    assert_eq!(short.message(), Some("Digest is invalid length for algorithm ECDSA_SHA_256."));

    // And it verifies outside KMS: standard ECDSA P-256 over the digest, with the public key.
    let public = lead.get_public_key().key_id(ANCHOR).send().await.expect("GetPublicKey");
    let b64 = |b: &[u8]| aws_smithy_types::base64::encode(b);
    let code = format!(
        "import base64, json\n\
         from cryptography.hazmat.primitives.serialization import load_der_public_key\n\
         from cryptography.hazmat.primitives.asymmetric import ec, utils\n\
         from cryptography.hazmat.primitives import hashes\n\
         from cryptography.exceptions import InvalidSignature\n\
         key = load_der_public_key(base64.b64decode('{}'))\n\
         try:\n    key.verify(base64.b64decode('{}'), base64.b64decode('{}'), ec.ECDSA(utils.Prehashed(hashes.SHA256())))\n    print('true')\n\
         except InvalidSignature:\n    print('false')\n",
        b64(public.public_key().expect("public key").as_ref()),
        b64(signature.as_ref()),
        b64(&digest)
    );
    assert_eq!(python_as("key-auditor", REGION, &code), Value::Bool(true), "offline verification");
}

#[tokio::test]
async fn the_security_lead_notifies_the_incident_topic_and_the_outsider_cannot() {
    let estate = estate();
    let topic = estate.topics.iter().find(|t| t.name == "security-incident").expect("the estate's incident topic");
    assert_eq!(topic.region, REGION);
    let arn = topic_arn(&topic.name);
    let subject = format!("INC-{} drop-kyc-key disabled", std::process::id());
    let body = "Key drop-kyc-key disabled by security-lead; see the incident log.";
    let call = format!("client.publish(TopicArn={arn:?}, Subject={subject:?}, Message={body:?})");
    let out = python_as("security-lead", REGION, &boto3_call("sns", &call));
    let message_id = out["ok"]["MessageId"].as_str().unwrap_or_else(|| panic!("Publish: {out}")).to_owned();

    let seen = sns_messages(&topic.name).await;
    assert_eq!(seen["topic_arn"], arn.as_str());
    let m = seen["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["message_id"] == message_id.as_str())
        .unwrap_or_else(|| panic!("{message_id} not in {seen}"));
    assert_eq!(m["subject"], subject.as_str());
    assert_eq!(m["message"], body);

    // The outsider is refused the way SNS refuses (403 AuthorizationError), and nothing lands.
    let call = format!("client.publish(TopicArn={arn:?}, Subject='outsider', Message='spoofed')");
    let out = python_as("outsider", REGION, &boto3_call("sns", &call));
    assert_eq!(out["error"], "AuthorizationError", "{out}");
    assert_eq!(out["status"], 403, "{out}");
    let msg = out["message"].as_str().unwrap_or("");
    assert!(msg.contains("user/outsider is not authorized to perform: SNS:Publish on resource: "), "{msg}");
    assert!(msg.contains(&arn), "{msg}");
    let seen = sns_messages(&topic.name).await;
    assert!(seen["messages"].as_array().expect("messages").iter().all(|m| m["subject"] != "outsider"), "{seen}");
    // Unknown topics are a 404 of the sandbox endpoint.
    let (status, _, _) = sandbox_http("GET", "/_sandbox/sns/messages?topic=no-such-topic", &[], b"").await;
    assert_eq!(status, 404);

    // CloudTrail, as AWS: Publish is a data event (in the trail file, never in
    // LookupEvents); the outsider's ListTopics is a management event (in LookupEvents).
    let out = python_as("outsider", REGION, &boto3_call("sns", "client.list_topics()"));
    assert_eq!(out["error"], "AuthorizationError", "{out}");
    let records = trail_records().await;
    let publish = records
        .iter()
        .find(|r| r["eventName"] == "Publish" && r["responseElements"]["messageId"] == message_id.as_str())
        .unwrap_or_else(|| panic!("Publish {message_id} not in the trail file"));
    assert_eq!(publish["eventSource"], "sns.amazonaws.com");
    assert_eq!(publish["eventCategory"], "Data");
    assert_eq!(publish["managementEvent"], false);
    assert_eq!(publish["userIdentity"]["userName"], "security-lead");
    assert_eq!(publish["requestParameters"]["topicArn"], arn.as_str());
    assert!(publish["requestParameters"].get("message").is_none(), "the body is not recorded: {publish}");
    assert_eq!(publish["resources"][0]["ARN"], arn.as_str());
    let auditor = context("key-auditor").await;
    let ct = cloudtrail_client(&auditor, REGION);
    let by_source = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::EventSource, "sns.amazonaws.com"));
    let listed = wait_for_event(by_source.clone(), "ListTopics by the outsider", |e, r| {
        e.event_name() == Some("ListTopics") && r["userIdentity"]["userName"] == "outsider"
    })
    .await;
    assert_eq!(record(&listed)["errorCode"], "AuthorizationError");
    // The ListTopics call came after the Publish and is visible, so the Publish would be too.
    let events = all_events(by_source).await;
    assert!(events.iter().all(|e| e.event_name() != Some("Publish")), "Publish is not a management event");
}

#[tokio::test]
async fn the_outsider_can_do_nothing_in_the_runbook() {
    let outsider = kms("outsider").await;
    let digest = Sha256::digest(b"x").to_vec();
    let sign = outsider
        .sign()
        .key_id(ANCHOR)
        .message(Blob::new(digest))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await;
    denied("Sign", sign, "kms:Sign");
    denied("DisableKey", outsider.disable_key().key_id("alias/drop-db-master-key").send().await, "kms:DisableKey");
    denied("CreateKey", outsider.create_key().send().await, "kms:CreateKey");
    let re = outsider
        .re_encrypt()
        .ciphertext_blob(Blob::new(vec![7u8; 80]))
        .destination_key_id("alias/drop-db-master-key")
        .send()
        .await;
    denied("ReEncrypt", re, "kms:ReEncryptFrom");
    let sm = secrets("outsider").await;
    denied("RotateSecret", sm.rotate_secret().secret_id("JWT_SECRET").send().await, "secretsmanager:RotateSecret");
}

#[tokio::test]
async fn stored_data_cannot_be_decrypted_once_its_key_is_disabled() {
    let estate = estate();
    let kyc = estate.keys.iter().find(|k| k.alias == "drop-kyc-key").expect("drop-kyc-key");
    let stored = kyc.stored_data.as_ref().expect("the application's KYC data at rest");
    let of = |reads: &[Value], key: &str| -> Vec<String> {
        reads.iter().filter(|r| r["key"] == key).map(|r| r["outcome"].as_str().unwrap_or("?").to_owned()).collect()
    };
    // Before the incident, the application reads its data.
    let reads = stored_reads().await;
    assert_eq!(of(&reads, "drop-kyc-key"), vec!["ok"; stored.records as usize], "{reads:?}");
    assert!(reads.iter().all(|r| r["principal"] == stored.principal.as_str() || r["key"] != "drop-kyc-key"));

    let lead = kms("security-lead").await;
    let arn = lead
        .describe_key()
        .key_id("alias/drop-kyc-key")
        .send()
        .await
        .expect("DescribeKey")
        .key_metadata()
        .and_then(|m| m.arn())
        .expect("ARN")
        .to_owned();
    lead.disable_key().key_id(&arn).send().await.expect("the security lead disables the key");
    let reads = stored_reads().await;
    assert_eq!(of(&reads, "drop-kyc-key"), vec!["DisabledException"; stored.records as usize], "{reads:?}");
    // Other keys' data is untouched.
    assert!(of(&reads, "drop-national-id-key").iter().all(|o| o == "ok"), "{reads:?}");

    // CloudTrail shows the refused reads: who, which key, which record, and why.
    let auditor = context("key-auditor").await;
    let ct = cloudtrail_client(&auditor, REGION);
    let by_key = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, &arn));
    let principal = stored.principal.clone();
    let e = wait_for_event(by_key, "a refused Decrypt of stored KYC data", move |e, r| {
        e.event_name() == Some("Decrypt")
            && r["errorCode"] == "DisabledException"
            && r["userIdentity"]["userName"] == principal.as_str()
    })
    .await;
    let r = record(&e);
    assert_eq!(r["errorMessage"], format!("{arn} is disabled."));
    assert_eq!(r["requestParameters"]["encryptionContext"]["purpose"], stored.purpose.as_str());
    assert_eq!(r["requestParameters"]["keyId"], arn.as_str());

    lead.enable_key().key_id(&arn).send().await.expect("EnableKey");
    assert!(of(&stored_reads().await, "drop-kyc-key").iter().all(|o| o == "ok"));
}

#[tokio::test]
async fn keydeck_notifies_the_incident_topic_through_the_rust_sdk() {
    // sns:Publish is a query-protocol call: the Rust SDK form-encodes a space as %20 (boto3
    // writes +) and signs those bytes. AWS checks the signature over the bytes it got; so
    // must the sandbox (it once re-encoded the form and refused with SignatureDoesNotMatch).
    let dir = temp_dir("notify");
    let run = |args: &[&str]| {
        let out = keydeck_as("security-lead", &dir, REGION).arg("--allow-write").args(args).output().expect("keydeck");
        assert!(
            out.status.success(),
            "keydeck {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let id = run(&["incident", "start", "--key", "drop-kyc-key", "--reason", "notify test: key seen in a log"]);
    let id = id.trim().to_owned();
    let report: Value =
        serde_json::from_str(&run(&["incident", "run", &id, "--step", "notify", "--format", "json"])).expect("JSON");
    assert_eq!(report["result"], "done", "{report}");
    let call = &report["results"][0];
    assert_eq!(call["call"], "sns:Publish", "{report}");
    let message_id = call["fields"]["MessageId"].as_str().unwrap_or_else(|| panic!("no MessageId: {report}"));

    let seen = sns_messages("security-incident").await;
    let m = seen["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["message_id"] == message_id)
        .unwrap_or_else(|| panic!("{message_id} not in {seen}"));
    assert_eq!(m["subject"], format!("keydeck incident {id}: kms-key-compromise alias/drop-kyc-key"), "{m}");
    let body = m["message"].as_str().expect("message");
    assert!(body.contains(&format!("Incident: {id}")) && body.contains("notify test: key seen in a log"), "{body}");

    // In the trail file as the security lead's Publish, signed by the Rust SDK.
    let publish = trail_records()
        .await
        .into_iter()
        .find(|r| r["eventName"] == "Publish" && r["responseElements"]["messageId"] == message_id)
        .unwrap_or_else(|| panic!("Publish {message_id} not in the trail file"));
    assert_eq!(publish["userIdentity"]["userName"], "security-lead");
    assert!(publish["errorCode"].is_null(), "{publish}");
    assert!(publish["userAgent"].as_str().is_some_and(|a| a.contains("aws-sdk-rust")), "{publish}");
}
