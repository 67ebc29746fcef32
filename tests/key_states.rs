//! Key states in the sandbox, through the real SDK. KMS refuses cryptographic operations
//! on a key that is not usable (the "Key states and KMS operations" table of the KMS
//! developer guide): a Disabled key answers DisabledException "<key ARN> is disabled.",
//! a key pending deletion KMSInvalidStateException "<key ARN> is pending deletion.".
//! moto does not, so the sandbox's proxy does, after IAM has allowed the call, and the
//! refusal is recorded in CloudTrail with AWS's errorCode and errorMessage.
//!
//! The operators are seeded ones whose IAM policy allows each call, so that only the key
//! state decides: key-admin creates keys and aliases, security-lead disables, enables,
//! schedules deletion and re-encrypts (kms:ReEncryptFrom and kms:ReEncryptTo),
//! app-encrypt encrypts and makes data keys, compliance-decrypt decrypts, key-auditor
//! reads CloudTrail. Each test makes its own keys in a region of its
//! own (the tests run in parallel; LookupEvents is throttled per region).

mod common;

use aws_sdk_cloudtrail::types::LookupAttributeKey;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::operation::encrypt::EncryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState};
use aws_sdk_kms::Client;
use common::*;
use keydeck::aws::AwsContext;

/// One KMS client per operator, all in one region.
struct Crew {
    region: String,
    admin: Client,
    lead: Client,
    encrypter: Client,
    decrypter: Client,
    outsider: Client,
    auditor: AwsContext,
}

async fn crew(region: &str) -> Crew {
    let kms = |ctx: &AwsContext| Client::new(&config_in(ctx, region));
    Crew {
        region: region.to_owned(),
        admin: kms(&context("key-admin").await),
        lead: kms(&context("security-lead").await),
        encrypter: kms(&context("app-encrypt").await),
        decrypter: kms(&context("compliance-decrypt").await),
        outsider: kms(&context("outsider").await),
        auditor: context("key-auditor").await,
    }
}

/// A key of this test's own: its id, its ARN, an alias name and that alias's ARN (the four
/// ways KMS accepts a KeyId).
struct TestKey {
    id: String,
    arn: String,
    alias: String,
    alias_arn: String,
}

impl TestKey {
    fn refs(&self) -> [&str; 4] {
        [&self.id, &self.arn, &self.alias, &self.alias_arn]
    }
}

async fn fresh_key(crew: &Crew, name: &str) -> TestKey {
    let out = crew.admin.create_key().description(format!("key-states test: {name}")).send().await.expect("create key");
    let md = out.key_metadata().expect("key metadata");
    let (id, arn) = (md.key_id().to_owned(), md.arn().expect("key ARN").to_owned());
    let alias = format!("alias/key-states-{name}");
    crew.admin.create_alias().alias_name(&alias).target_key_id(&id).send().await.expect("create alias");
    let account = arn.split(':').nth(4).expect("an account in the key ARN");
    let alias_arn = format!("arn:aws:kms:{}:{account}:{alias}", crew.region);
    TestKey { id, arn, alias, alias_arn }
}

async fn key_state(crew: &Crew, key: &TestKey) -> Option<KeyState> {
    let out = crew.admin.describe_key().key_id(&key.id).send().await.expect("DescribeKey works in every state");
    out.key_metadata().and_then(|m| m.key_state()).cloned()
}

/// The call failed with `code` and `message` in AWS's shape (HTTP 400, a typed error).
#[track_caller]
fn assert_refused<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
    code: &str,
    message: &str,
) {
    let err = result.expect_err(what);
    assert_eq!(err.code(), Some(code), "{what}: {err:?}");
    assert_eq!(err.message(), Some(message), "{what}: {err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400), "{what}: {err:?}");
}

async fn encrypt(client: &Client, key_id: &str) -> Result<Blob, SdkError<EncryptError, HttpResponse>> {
    let out = client.encrypt().key_id(key_id).plaintext(Blob::new("4512-0000")).send().await?;
    Ok(out.ciphertext_blob().expect("a ciphertext").clone())
}

#[tokio::test]
async fn a_disabled_key_refuses_cryptographic_operations_until_it_is_enabled() {
    let crew = crew("us-east-2").await;
    let key = fresh_key(&crew, "disabled").await;
    let blob = encrypt(&crew.encrypter, &key.id).await.expect("an enabled key encrypts");

    crew.lead.disable_key().key_id(&key.id).send().await.expect("security-lead disables the key");
    assert_eq!(key_state(&crew, &key).await, Some(KeyState::Disabled));
    let disabled = format!("{} is disabled.", key.arn);
    for r in key.refs() {
        assert_refused(&format!("Encrypt with {r}"), encrypt(&crew.encrypter, r).await, "DisabledException", &disabled);
    }
    let gdk = crew.encrypter.generate_data_key().key_id(&key.alias).key_spec(DataKeySpec::Aes256).send().await;
    assert_refused("GenerateDataKey", gdk, "DisabledException", &disabled);
    // Decrypt without KeyId: the key is the ciphertext's.
    let dec = crew.decrypter.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_refused("Decrypt of the key's ciphertext", dec, "DisabledException", &disabled);
    let dec = crew.decrypter.decrypt().ciphertext_blob(blob.clone()).key_id(&key.alias_arn).send().await;
    assert_refused("Decrypt naming the key", dec, "DisabledException", &disabled);
    // IAM comes first, as in AWS: a caller without the permission learns nothing of the key.
    let denied = crew.outsider.decrypt().ciphertext_blob(blob.clone()).send().await.expect_err("outsider");
    assert_eq!(denied.code(), Some("AccessDeniedException"), "{denied:?}");

    crew.lead.enable_key().key_id(&key.id).send().await.expect("security-lead enables the key");
    for r in key.refs() {
        encrypt(&crew.encrypter, r).await.unwrap_or_else(|e| panic!("Encrypt with {r} after EnableKey: {e:?}"));
    }
    crew.encrypter
        .generate_data_key()
        .key_id(&key.alias)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("GenerateDataKey after EnableKey");
    let plain = crew.decrypter.decrypt().ciphertext_blob(blob).send().await.expect("Decrypt after EnableKey");
    assert_eq!(plain.plaintext().map(|p| p.as_ref()), Some(&b"4512-0000"[..]));
    assert_eq!(plain.key_id(), Some(key.arn.as_str()));
}

#[tokio::test]
async fn a_key_pending_deletion_refuses_them_with_kms_invalid_state() {
    let crew = crew("ap-northeast-1").await;
    let key = fresh_key(&crew, "pending").await;
    let blob = encrypt(&crew.encrypter, &key.id).await.expect("an enabled key encrypts");

    crew.lead
        .schedule_key_deletion()
        .key_id(&key.id)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("security-lead schedules the deletion");
    assert_eq!(key_state(&crew, &key).await, Some(KeyState::PendingDeletion));
    let pending = format!("{} is pending deletion.", key.arn);
    for r in key.refs() {
        let res = encrypt(&crew.encrypter, r).await;
        assert_refused(&format!("Encrypt with {r}"), res, "KMSInvalidStateException", &pending);
    }
    let gdk = crew.encrypter.generate_data_key().key_id(&key.id).key_spec(DataKeySpec::Aes256).send().await;
    assert_refused("GenerateDataKey", gdk, "KMSInvalidStateException", &pending);
    let dec = crew.decrypter.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_refused("Decrypt", dec, "KMSInvalidStateException", &pending);

    // Changes KMS refuses on a key pending deletion (moto made them: its DisableKey turned the
    // key Disabled, cancelling the deletion) — after IAM, which is checked first.
    for r in [key.id.as_str(), key.arn.as_str()] {
        let res = crew.lead.disable_key().key_id(r).send().await;
        assert_refused(&format!("DisableKey with {r}"), res, "KMSInvalidStateException", &pending);
        let res = crew.lead.enable_key().key_id(r).send().await;
        assert_refused(&format!("EnableKey with {r}"), res, "KMSInvalidStateException", &pending);
    }
    let res = crew.admin.enable_key_rotation().key_id(&key.id).send().await;
    assert_refused("EnableKeyRotation", res, "KMSInvalidStateException", &pending);
    let res = crew.admin.create_alias().alias_name("alias/key-states-onto-pending").target_key_id(&key.id).send().await;
    assert_refused("CreateAlias onto it", res, "KMSInvalidStateException", &pending);
    let res = crew.lead.schedule_key_deletion().key_id(&key.arn).pending_window_in_days(7).send().await;
    assert_refused("ScheduleKeyDeletion again", res, "KMSInvalidStateException", &pending);
    let denied = crew.admin.disable_key().key_id(&key.id).send().await.expect_err("key-admin may not DisableKey");
    assert_eq!(denied.code(), Some("AccessDeniedException"), "IAM first: {denied:?}");
    let denied = crew.outsider.disable_key().key_id(&key.arn).send().await.expect_err("the outsider may not");
    assert_eq!(denied.code(), Some("AccessDeniedException"), "IAM first: {denied:?}");
    assert_eq!(key_state(&crew, &key).await, Some(KeyState::PendingDeletion), "nothing changed the key");

    // Cancelling the deletion leaves the key Disabled (as in AWS): still refused, now as disabled.
    crew.lead.cancel_key_deletion().key_id(&key.id).send().await.expect("security-lead cancels the deletion");
    assert_eq!(key_state(&crew, &key).await, Some(KeyState::Disabled));
    let dec = crew.decrypter.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_refused("Decrypt after CancelKeyDeletion", dec, "DisabledException", &format!("{} is disabled.", key.arn));

    crew.lead.enable_key().key_id(&key.id).send().await.expect("security-lead enables the key");
    encrypt(&crew.encrypter, &key.alias).await.expect("Encrypt after EnableKey");
    let plain = crew.decrypter.decrypt().ciphertext_blob(blob).send().await.expect("Decrypt after EnableKey");
    assert_eq!(plain.plaintext().map(|p| p.as_ref()), Some(&b"4512-0000"[..]));
}

#[tokio::test]
async fn the_seeded_disabled_key_refuses_encryption() {
    let estate = estate();
    let seeded =
        estate.keys.iter().find(|k| k.state.as_deref() == Some("Disabled")).expect("the estate has a disabled key");
    let crew = crew(&seeded.region).await;
    let alias = format!("alias/{}", seeded.alias);
    let md = crew.admin.describe_key().key_id(&alias).send().await.expect("describe the seeded key");
    let arn = md.key_metadata().and_then(|m| m.arn()).expect("key ARN").to_owned();
    assert_refused(
        "Encrypt",
        encrypt(&crew.encrypter, &alias).await,
        "DisabledException",
        &format!("{arn} is disabled."),
    );
}

#[tokio::test]
async fn re_encrypt_is_decided_by_iam_before_the_key_state() {
    // Operators without kms:ReEncryptFrom never reach the key-state check: with a disabled
    // source or destination key the answer stays AccessDeniedException naming the
    // permission AWS checks first, as AWS authorises before it looks at key states.
    let crew = crew("eu-central-1").await;
    let source = fresh_key(&crew, "reencrypt-source").await;
    let destination = fresh_key(&crew, "reencrypt-destination").await;
    let blob = encrypt(&crew.encrypter, &source.id).await.expect("an enabled key encrypts");
    for (disabled, what) in [(&source, "source"), (&destination, "destination")] {
        crew.lead.disable_key().key_id(&disabled.id).send().await.expect("disable");
        for client in [&crew.decrypter, &crew.encrypter] {
            let err = client
                .re_encrypt()
                .ciphertext_blob(blob.clone())
                .destination_key_id(&destination.id)
                .send()
                .await
                .expect_err("nobody may ReEncrypt");
            assert_eq!(err.code(), Some("AccessDeniedException"), "{what} disabled: {err:?}");
            assert!(err.message().is_some_and(|m| m.ends_with("kms:ReEncryptFrom")), "{what} disabled: {err:?}");
        }
        crew.lead.enable_key().key_id(&disabled.id).send().await.expect("enable");
    }
}

#[tokio::test]
async fn re_encrypt_refuses_an_unusable_source_or_destination_key() {
    // The security lead holds kms:ReEncryptFrom and kms:ReEncryptTo (004 §4.7 step 5), so
    // the key states decide: KMS needs both the source key (the ciphertext's) and the
    // destination key usable, and names the first one that is not.
    let crew = crew("ap-southeast-2").await;
    let source = fresh_key(&crew, "re-source").await;
    let destination = fresh_key(&crew, "re-destination").await;
    let blob = encrypt(&crew.encrypter, &source.id).await.expect("an enabled key encrypts");
    let re_encrypt =
        |to: &str| crew.lead.re_encrypt().ciphertext_blob(blob.clone()).destination_key_id(to.to_owned()).send();
    let ok = re_encrypt(&destination.alias).await.expect("both keys enabled: ReEncrypt works");
    assert_eq!(ok.source_key_id(), Some(source.arn.as_str()));
    assert_eq!(ok.key_id(), Some(destination.arn.as_str()));
    let re_encrypted = ok.ciphertext_blob().expect("a ciphertext").clone();

    let rows: [(&TestKey, &str); 2] = [(&source, "source"), (&destination, "destination")];
    for (key, what) in rows {
        crew.lead.disable_key().key_id(&key.id).send().await.expect("disable");
        for r in destination.refs() {
            let res = re_encrypt(r).await;
            assert_refused(
                &format!("ReEncrypt to {r}, {what} disabled"),
                res,
                "DisabledException",
                &format!("{} is disabled.", key.arn),
            );
        }
        crew.lead.enable_key().key_id(&key.id).send().await.expect("enable");
    }
    // Pending deletion: the destination first (the source must stay usable to be read).
    let spare = fresh_key(&crew, "re-spare").await;
    crew.lead.schedule_key_deletion().key_id(&destination.id).pending_window_in_days(7).send().await.expect("schedule");
    assert_refused(
        "ReEncrypt to a key pending deletion",
        re_encrypt(&destination.id).await,
        "KMSInvalidStateException",
        &format!("{} is pending deletion.", destination.arn),
    );
    // The source pending deletion: a ciphertext under it cannot be moved to another key.
    crew.lead.schedule_key_deletion().key_id(&source.id).pending_window_in_days(7).send().await.expect("schedule");
    assert_refused(
        "ReEncrypt from a key pending deletion",
        re_encrypt(&spare.id).await,
        "KMSInvalidStateException",
        &format!("{} is pending deletion.", source.arn),
    );
    // The data re-encrypted before is readable under its new key only while that key is usable.
    let dec = crew.decrypter.decrypt().ciphertext_blob(re_encrypted).send().await;
    assert_refused(
        "Decrypt of the re-encrypted data",
        dec,
        "KMSInvalidStateException",
        &format!("{} is pending deletion.", destination.arn),
    );
}

#[tokio::test]
async fn refusals_are_recorded_in_cloudtrail_with_the_error() {
    let crew = crew("ca-central-1").await;
    let key = fresh_key(&crew, "trail").await;
    let blob = encrypt(&crew.encrypter, &key.id).await.expect("an enabled key encrypts");
    crew.lead.disable_key().key_id(&key.id).send().await.expect("disable");
    let disabled = format!("{} is disabled.", key.arn);
    assert_refused("Encrypt", encrypt(&crew.encrypter, &key.alias).await, "DisabledException", &disabled);
    let dec = crew.decrypter.decrypt().ciphertext_blob(blob).send().await;
    assert_refused("Decrypt", dec, "DisabledException", &disabled);
    crew.lead.schedule_key_deletion().key_id(&key.id).pending_window_in_days(7).send().await.expect("schedule");
    let pending = format!("{} is pending deletion.", key.arn);
    let gdk = crew.encrypter.generate_data_key().key_id(&key.arn).key_spec(DataKeySpec::Aes256).send().await;
    assert_refused("GenerateDataKey", gdk, "KMSInvalidStateException", &pending);

    let ct = cloudtrail_client(&crew.auditor, &crew.region);
    let by_key = ct.lookup_events().lookup_attributes(attr(LookupAttributeKey::ResourceName, &key.arn));
    let find = |name: &'static str, code: &'static str| {
        wait_for_event(by_key.clone(), name, move |e, r| e.event_name() == Some(name) && r["errorCode"] == code)
    };

    let r = record(&find("Encrypt", "DisabledException").await);
    assert_eq!(r["errorMessage"], disabled.as_str());
    assert_eq!(r["userIdentity"]["userName"], "app-encrypt");
    assert_eq!(r["requestParameters"]["keyId"], key.alias.as_str());
    assert!(r["responseElements"].is_null(), "{r}");
    assert_eq!(r["readOnly"], true);
    assert_eq!(r["resources"][0]["ARN"], key.arn.as_str());

    // The caller named no key: the record names the ciphertext's key, as KMS's does.
    let r = record(&find("Decrypt", "DisabledException").await);
    assert_eq!(r["errorMessage"], disabled.as_str());
    assert_eq!(r["userIdentity"]["userName"], "compliance-decrypt");
    assert_eq!(r["requestParameters"]["keyId"], key.arn.as_str());
    assert!(r["responseElements"].is_null(), "{r}");

    let r = record(&find("GenerateDataKey", "KMSInvalidStateException").await);
    assert_eq!(r["errorMessage"], pending.as_str());
    assert!(r["responseElements"].is_null(), "{r}");

    // The encryption before the key was disabled is recorded without an error.
    let encrypts: Vec<_> =
        all_events(by_key).await.iter().map(record).filter(|r| r["eventName"] == "Encrypt").collect();
    let errors: Vec<_> = encrypts.iter().map(|r| r.get("errorCode").cloned()).collect();
    assert_eq!(errors.len(), 2, "{encrypts:?}");
    assert!(errors.contains(&None) && errors.contains(&Some("DisabledException".into())), "{errors:?}");
}

/// Key policies decide as in KMS: a key policy without a statement for the account gives
/// IAM no say, so only the principals it names may use the key (the runbook's quarantine:
/// only the security lead). moto never reads key policies; the sandbox's proxy does, for
/// the cryptographic operations, after IAM has allowed the call.
#[tokio::test]
async fn a_key_policy_naming_only_the_lead_refuses_everyone_else() {
    let crew = crew("eu-west-3").await;
    let key = fresh_key(&crew, "quarantined").await;
    encrypt(&crew.encrypter, &key.id).await.expect("the default policy defers to IAM: app-encrypt encrypts");
    let lead = sandbox().operator("security-lead").expect("seeded").arn.clone();
    let account = key.arn.split(':').nth(4).expect("account").to_owned();
    let only_lead = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "KeydeckQuarantine", "Effect": "Allow", "Principal": {"AWS": lead}, "Action": "kms:*", "Resource": "*"}]
    });
    let put = |policy: String| crew.lead.put_key_policy().key_id(&key.id).policy_name("default").policy(policy).send();
    put(only_lead.to_string()).await.expect("the lead quarantines the key");
    for r in key.refs() {
        let refused = encrypt(&crew.encrypter, r).await;
        let err = refused.expect_err("quarantined: app-encrypt is refused");
        assert_eq!(err.code(), Some("AccessDeniedException"), "{r}: {err:?}");
        let message = err.message().unwrap_or_default();
        assert!(message.contains("no resource-based policy allows the kms:Encrypt action"), "{message}");
        assert!(message.contains(&key.arn), "{message}");
    }
    // The account back in the policy: IAM decides again.
    let restored = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                       "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"}]
    });
    put(restored.to_string()).await.expect("the lead restores the policy");
    encrypt(&crew.encrypter, &key.id).await.expect("restored: app-encrypt encrypts again");
    // An explicit Deny for a principal wins over the account's Allow.
    let encrypter = sandbox().operator("app-encrypt").expect("seeded").arn.clone();
    let mut denied = restored.clone();
    denied["Statement"].as_array_mut().expect("statements").push(serde_json::json!(
        {"Effect": "Deny", "Principal": {"AWS": encrypter}, "Action": "kms:Encrypt", "Resource": "*"}));
    put(denied.to_string()).await.expect("a deny");
    assert_eq!(encrypt(&crew.encrypter, &key.id).await.expect_err("denied").code(), Some("AccessDeniedException"));
}
