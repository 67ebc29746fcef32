//! Integration tests through the real AWS SDK against the sandbox (moto with IAM
//! enforcement): identities, typed access-denied errors, signatures, the seeded estate.

mod common;

use chrono::{Duration, Utc};
use common::*;
use keydeck::aws::{self, AwsContext, AwsErrorKind, ConnectOptions};
use keydeck::domain::inventory::KeyState;

fn days_ago(t: chrono::DateTime<Utc>) -> i64 {
    (Utc::now() - t).num_days()
}

#[tokio::test]
async fn operators_have_distinct_sts_identities() {
    let info = sandbox();
    let admin = aws::sts::caller_identity(&context("key-admin").await).await.expect("key-admin identity");
    let lead = aws::sts::caller_identity(&context("security-lead").await).await.expect("security-lead identity");
    assert_eq!(admin.arn, format!("arn:aws:iam::{}:user/key-admin", info.account_id));
    assert_eq!(lead.arn, format!("arn:aws:iam::{}:user/security-lead", info.account_id));
    assert_eq!(admin.account, estate().account_id);
    assert_ne!(admin.user_id, lead.user_id);
    // GetCallerIdentity needs no permission, as in AWS: even the outsider may call it.
    let outsider = aws::sts::caller_identity(&context("outsider").await).await.expect("outsider identity");
    assert!(outsider.arn.ends_with(":user/outsider"));
}

#[tokio::test]
async fn a_call_outside_the_policy_is_a_typed_access_denied() {
    let ctx = context("outsider").await;
    let rc = &ctx.regions()[0];
    // Raw SDK: a service error whose code is AccessDeniedException (the proxy rewrote
    // moto's XML into the awsJson1_1 error shape).
    let client = aws_sdk_kms::Client::new(&rc.config);
    let err = client.list_keys().send().await.expect_err("outsider may not list keys");
    let se = err.as_service_error().expect("a service error, not a transport failure");
    use aws_sdk_kms::error::ProvideErrorMetadata;
    assert_eq!(se.code(), Some("AccessDeniedException"));
    assert!(se.message().unwrap_or("").contains("outsider"), "{:?}", se.message());
    // keydeck's layer: the region's problem names the call and the fix; nothing panics.
    let inv = aws::fetch_inventory(&ctx).await;
    let problems: Vec<&String> = inv.problems().collect();
    assert!(problems.iter().any(|p| p.contains("kms:ListKeys") && p.contains("access denied")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("secretsmanager:ListSecrets")), "{problems:?}");
}

#[tokio::test]
async fn dual_approval_is_enforced_by_iam() {
    // 004 §6: rotation and deletion need the key-admin to propose and the CISO to
    // approve. The proposer lacks the permission; the approver holds it.
    let admin = context("key-admin").await;
    let lead = context("security-lead").await;
    let region = "eu-north-1";
    let admin_kms = aws_sdk_kms::Client::new(region_config(&admin, region));
    let lead_kms = aws_sdk_kms::Client::new(region_config(&lead, region));
    let created =
        admin_kms.create_key().description("dual-approval test key").send().await.expect("key-admin creates keys");
    let key_id = created.key_metadata().expect("metadata").key_id().to_owned();
    use aws_sdk_kms::error::ProvideErrorMetadata;
    let denied = admin_kms.rotate_key_on_demand().key_id(&key_id).send().await.expect_err("proposer cannot rotate");
    assert_eq!(denied.code(), Some("AccessDeniedException"));
    let denied = admin_kms
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .expect_err("proposer cannot delete");
    assert_eq!(denied.code(), Some("AccessDeniedException"));
    lead_kms.rotate_key_on_demand().key_id(&key_id).send().await.expect("approver rotates");
    lead_kms
        .schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("approver schedules deletion");
    let described = lead_kms.describe_key().key_id(&key_id).send().await.expect("describe");
    assert_eq!(described.key_metadata().and_then(|m| m.key_state()).map(|s| s.as_str()), Some("PendingDeletion"));
    // Separation of duties (§4.5): the key-admin cannot decrypt.
    let denied = admin_kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(vec![1u8; 64]))
        .send()
        .await
        .expect_err("no decrypt");
    assert_eq!(denied.code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn wrong_secret_key_is_refused_as_bad_signature() {
    let admin = sandbox().operator("key-admin").expect("seeded");
    let ctx = AwsContext::connect(&with_keys(&admin.access_key_id, "not-the-secret-key-0000000000000000000000"))
        .await
        .expect("context");
    let err = aws::sts::caller_identity(&ctx).await.expect_err("wrongly signed request refused");
    assert_eq!(err.kind, AwsErrorKind::BadSignature, "{err}");
    let inv = aws::fetch_inventory(&ctx).await;
    assert!(inv.keys().next().is_none());
    assert!(inv.problems().any(|p| p.contains("signature refused")), "{:?}", inv.problems().collect::<Vec<_>>());
}

#[tokio::test]
async fn unknown_access_key_is_invalid_credentials() {
    let ctx = AwsContext::connect(&with_keys("AKIAIOSFODNN7NOTREAL", "x".repeat(40).as_str())).await.expect("context");
    let err = aws::sts::caller_identity(&ctx).await.expect_err("unknown key refused");
    assert_eq!(err.kind, AwsErrorKind::InvalidCredentials, "{err}");
    assert!(err.to_string().contains("sts:GetCallerIdentity"), "{err}");
}

#[tokio::test]
async fn unsigned_request_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let endpoint = sandbox().endpoint.trim_start_matches("http://").to_owned();
    let body = "{}";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {endpoint}\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(&endpoint).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.expect("read");
    let status = resp.lines().next().unwrap_or("");
    assert!(!status.contains(" 200 "), "unsigned ListKeys was answered: {status}");
    assert!(status.contains(" 4"), "expected a 4xx refusal: {status}");
}

#[tokio::test]
async fn the_seeded_estate_is_all_there() {
    let estate = estate();
    let ctx = context("key-admin").await;
    assert_eq!(ctx.region_names(), estate.regions);
    let inv = aws::fetch_inventory(&ctx).await;
    assert_eq!(inv.problems().count(), 0, "{:?}", inv.problems().collect::<Vec<_>>());
    for ek in &estate.keys {
        let k = inv
            .keys()
            .find(|k| k.aliases.contains(&ek.alias))
            .unwrap_or_else(|| panic!("key alias/{} missing", ek.alias));
        assert_eq!(k.region, ek.region, "{}", ek.alias);
        for extra in &ek.extra_aliases {
            assert!(k.aliases.contains(extra), "{}: extra alias {extra}", ek.alias);
        }
        let want_state = KeyState::parse(ek.state.as_deref().unwrap_or("Enabled"));
        assert_eq!(k.state, want_state, "{}", ek.alias);
        assert_eq!(k.spec, ek.spec.clone().unwrap_or("SYMMETRIC_DEFAULT".into()), "{}", ek.alias);
        assert_eq!(k.usage, ek.usage.clone().unwrap_or("ENCRYPT_DECRYPT".into()), "{}", ek.alias);
        let created = k.created.unwrap_or_else(|| panic!("{}: no creation date", ek.alias));
        assert!(
            (days_ago(created) - ek.created_days_ago).abs() <= 1,
            "{}: created {created}, want {} days ago",
            ek.alias,
            ek.created_days_ago
        );
        if let (Some(window), Some(sched)) = (ek.deletion_window_days, ek.deletion_scheduled_days_ago) {
            let want = Utc::now() - Duration::days(sched) + Duration::days(window);
            let got = k.deletion_date.unwrap_or_else(|| panic!("{}: no deletion date", ek.alias));
            assert!((got - want).num_hours().abs() <= 25, "{}: deletion {got}, want ~{want}", ek.alias);
        }
        // Rotation and tags through the raw SDK (the inventory issue brings them into keydeck).
        let kms = aws_sdk_kms::Client::new(region_config(&ctx, &ek.region));
        if ek.spec.is_none() {
            let st = kms.get_key_rotation_status().key_id(&k.key_id).send().await.expect("rotation status");
            assert_eq!(st.key_rotation_enabled(), ek.rotation, "{}: rotation", ek.alias);
            let rots = kms.list_key_rotations().key_id(&k.key_id).send().await.expect("rotations");
            let ago = |kind: aws_sdk_kms::types::RotationType| -> Vec<i64> {
                let mut v: Vec<i64> = rots
                    .rotations()
                    .iter()
                    .filter(|r| r.rotation_type() == Some(&kind))
                    .filter_map(|r| r.rotation_date())
                    .map(|d| (Utc::now().timestamp() - d.secs()) / 86_400)
                    .collect();
                v.sort();
                v
            };
            let mut want = ek.rotations_days_ago.clone();
            want.sort();
            let got = ago(aws_sdk_kms::types::RotationType::OnDemand);
            assert_eq!(got.len(), want.len(), "{}: on-demand rotations {got:?} want {want:?}", ek.alias);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1, "{}: rotation {g} days ago, want {w}", ek.alias);
            }
            // Automatic rotation on: the rotations KMS would have made every 365 days.
            let auto = ago(aws_sdk_kms::types::RotationType::Automatic);
            let want_auto: Vec<i64> = if ek.rotation {
                let mut v: Vec<i64> = (1..).map(|n| ek.created_days_ago - 365 * n).take_while(|d| *d > 0).collect();
                v.sort();
                v
            } else {
                vec![]
            };
            assert_eq!(auto.len(), want_auto.len(), "{}: automatic rotations {auto:?} want {want_auto:?}", ek.alias);
            for (g, w) in auto.iter().zip(&want_auto) {
                assert!((g - w).abs() <= 1, "{}: automatic rotation {g} days ago, want {w}", ek.alias);
            }
        }
        let tags = kms.list_resource_tags().key_id(&k.key_id).send().await.expect("tags");
        for (tk, tv) in &ek.tags {
            assert!(
                tags.tags().iter().any(|t| t.tag_key() == tk && t.tag_value() == tv),
                "{}: tag {tk}={tv}",
                ek.alias
            );
        }
    }
    for es in &estate.secrets {
        let s = inv.secrets().find(|s| s.name == es.name).unwrap_or_else(|| panic!("secret {} missing", es.name));
        assert_eq!(s.region, es.region);
        assert_eq!(s.rotation_enabled, es.rotation_days.is_some() || es.rotation_schedule.is_some(), "{}", es.name);
        assert_eq!(s.rotation_schedule, es.rotation_schedule, "{}", es.name);
        if es.rotation_days.is_some() {
            assert_eq!(s.rotation_days, es.rotation_days, "{}", es.name);
        }
        if let Some(ago) = es.last_rotated_days_ago {
            let lr = s.last_rotated.unwrap_or_else(|| panic!("{}: no LastRotatedDate", es.name));
            assert!((days_ago(lr) - ago).abs() <= 1, "{}: last rotated {lr}", es.name);
        }
        let created = s.created.unwrap_or_else(|| panic!("{}: no CreatedDate", es.name));
        assert!((days_ago(created) - es.created_days_ago).abs() <= 1, "{}: created {created}", es.name);
        if let Some(alias) = &es.kms_key {
            assert!(
                s.kms_key.as_deref().is_some_and(|k| k.contains(alias.as_str())
                    || inv.keys().any(|key| key.aliases.contains(alias) && (k == key.key_id || k == key.arn))),
                "{}: kms key {:?}",
                es.name,
                s.kms_key
            );
        }
    }
    // Every topic is there, in its region (the sandbox endpoint reads moto's SNS backend).
    for et in &estate.topics {
        let seen = sns_messages(&et.name).await;
        assert_eq!(seen["topic_arn"], format!("arn:aws:sns:{}:{}:{}", et.region, estate.account_id, et.name));
    }
    // Every operator is a real IAM user whose identity STS reports.
    for op in &estate.operators {
        let id = aws::sts::caller_identity(&context(&op.name).await).await.expect("identity");
        assert_eq!(id.arn, format!("arn:aws:iam::{}:user/{}", estate.account_id, op.name));
    }
}

#[tokio::test]
async fn operators_can_do_exactly_what_their_role_allows() {
    // Spot-check the least-privilege policies of 004 §4.5 against the estate's data.
    let auditor = context("key-auditor").await;
    assert_eq!(aws::fetch_inventory(&auditor).await.problems().count(), 0, "the auditor reads the whole inventory");
    let enc = context("app-encrypt").await;
    let kms = aws_sdk_kms::Client::new(region_config(&enc, "eu-north-1"));
    kms.generate_data_key()
        .key_id("alias/drop-national-id-key")
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .send()
        .await
        .expect("app-encrypt generates data keys");
    use aws_sdk_kms::error::ProvideErrorMetadata;
    let e = kms.list_keys().send().await.expect_err("app-encrypt cannot list keys");
    assert_eq!(e.code(), Some("AccessDeniedException"));
    let app_runner_can_read_secrets = estate()
        .operators
        .iter()
        .any(|o| o.name == "app-runner" && o.actions.iter().any(|a| a == "secretsmanager:GetSecretValue"));
    assert!(app_runner_can_read_secrets);
    let admin = context("key-admin").await;
    let sm = aws_sdk_secretsmanager::Client::new(region_config(&admin, "eu-north-1"));
    let e =
        sm.get_secret_value().secret_id("JWT_SECRET").send().await.expect_err("key-admin never reads secret values");
    assert_eq!(e.code(), Some("AccessDeniedException"));
}

/// KMS's list calls page as AWS documents (moto answers everything in one page): Limit
/// within its bounds (ListKeys 1..1000, ListAliases 1..100, ListResourceTags 1..50), pages
/// of at most Limit items with Truncated and NextMarker, every item exactly once; a Limit
/// out of bounds is a ValidationException, a Marker not returned by the same call an
/// InvalidMarkerException.
#[tokio::test]
async fn kms_lists_page_as_aws_does() {
    use aws_sdk_kms::error::ProvideErrorMetadata;
    let ctx = context("key-auditor").await;
    let kms = aws_sdk_kms::Client::new(&ctx.regions()[0].config);

    let all = kms.list_keys().limit(1000).send().await.expect("ListKeys");
    assert!(!all.truncated, "one page of 1000 holds the sandbox");
    let every: Vec<String> = all.keys().iter().filter_map(|k| k.key_id().map(str::to_owned)).collect();
    assert!(every.len() > 5, "{} keys", every.len());
    let mut paged = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = kms.list_keys().limit(3).set_marker(marker.clone()).send().await.expect("ListKeys page");
        pages += 1;
        assert!(page.keys().len() <= 3);
        paged.extend(page.keys().iter().filter_map(|k| k.key_id().map(str::to_owned)));
        assert_eq!(page.truncated, page.next_marker().is_some());
        match page.next_marker() {
            Some(m) => marker = Some(m.to_owned()),
            None => break,
        }
    }
    // Other tests create keys meanwhile (appended): every key seen before, each once.
    let distinct: std::collections::BTreeSet<&String> = paged.iter().collect();
    assert_eq!(distinct.len(), paged.len(), "no key twice: {paged:?}");
    assert!(every.iter().all(|k| distinct.contains(k)), "every key: {every:?} in {paged:?}");
    assert_eq!(pages, paged.len().div_ceil(3).max(1));
    // The SDK's paginator, at AWS's default page size, sees the same keys.
    let mut via: Vec<String> = Vec::new();
    let mut p = kms.list_aliases().into_paginator().page_size(4).send();
    let mut alias_pages = 0;
    while let Some(page) = p.next().await {
        let page = page.expect("ListAliases page");
        alias_pages += 1;
        assert!(page.aliases().len() <= 4);
        via.extend(page.aliases().iter().filter_map(|a| a.alias_name().map(str::to_owned)));
    }
    let one = kms.list_aliases().limit(100).send().await.expect("ListAliases");
    let mut whole: Vec<String> = one.aliases().iter().filter_map(|a| a.alias_name().map(str::to_owned)).collect();
    assert!(alias_pages > 1, "{alias_pages} pages");
    via.sort();
    whole.sort();
    let (seen, now): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
        (via.iter().collect(), whole.iter().collect());
    assert_eq!(seen.len(), via.len(), "no alias twice");
    // Aliases created by other tests meanwhile may be in the later list only.
    assert!(seen.is_subset(&now), "{via:?} vs {whole:?}");

    for (limit, bound) in [(0, "greater than or equal to 1"), (1001, "less than or equal to 1000")] {
        let e = kms.list_keys().limit(limit).send().await.expect_err("out of bounds");
        assert_eq!(e.code(), Some("ValidationException"), "{e:?}");
        assert!(e.message().unwrap_or_default().contains(bound), "{:?}", e.message());
    }
    let e = kms.list_aliases().limit(101).send().await.expect_err("ListAliases allows 100");
    assert_eq!(e.code(), Some("ValidationException"));
    let e = kms.list_keys().marker("not-a-marker").send().await.expect_err("foreign marker");
    assert_eq!(e.code(), Some("InvalidMarkerException"), "{e:?}");
    // A ListKeys marker is not a ListAliases one.
    let m = kms.list_keys().limit(1).send().await.expect("page").next_marker.expect("truncated");
    let e = kms.list_aliases().marker(m).send().await.expect_err("another call's marker");
    assert_eq!(e.code(), Some("InvalidMarkerException"));
}

/// Wrap `material` under a GetParametersForImport public key (DER) with RSAES_OAEP_SHA_256,
/// as an importer does before ImportKeyMaterial (the sandbox's Python has `cryptography`).
fn wrap_material(public_der: &[u8], material: &[u8]) -> Vec<u8> {
    use aws_smithy_types::base64;
    let python = std::env::var("KEYDECK_PYTHON").unwrap_or_else(|_| "python3".into());
    let code = "import base64,sys\n\
        from cryptography.hazmat.primitives import hashes, serialization\n\
        from cryptography.hazmat.primitives.asymmetric import padding\n\
        pub = serialization.load_der_public_key(base64.b64decode(sys.argv[1]))\n\
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)\n\
        print(base64.b64encode(pub.encrypt(base64.b64decode(sys.argv[2]), oaep)).decode())";
    let out = std::process::Command::new(python)
        .args(["-c", code, &base64::encode(public_der), &base64::encode(material)])
        .output()
        .expect("run python");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    base64::decode(String::from_utf8_lossy(&out.stdout).trim()).expect("base64")
}

/// GetParametersForImport + ImportKeyMaterial of `material` into `key_id`, through the SDK.
async fn import_material(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    material: &[u8],
    valid_to: Option<chrono::DateTime<Utc>>,
    new: bool,
) -> Result<(), aws_sdk_kms::error::SdkError<aws_sdk_kms::operation::import_key_material::ImportKeyMaterialError>> {
    use aws_sdk_kms::types::{AlgorithmSpec, ExpirationModelType, ImportType, WrappingKeySpec};
    let params = kms
        .get_parameters_for_import()
        .key_id(key_id)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .expect("GetParametersForImport");
    let wrapped = wrap_material(params.public_key().expect("public key").as_ref(), material);
    let mut req = kms
        .import_key_material()
        .key_id(key_id)
        .import_token(params.import_token().expect("token").clone())
        .encrypted_key_material(aws_sdk_kms::primitives::Blob::new(wrapped));
    req = match valid_to {
        Some(t) => req.valid_to(aws_smithy_types::DateTime::from_secs(t.timestamp())),
        None => req.expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire),
    };
    if new {
        req = req.import_type(ImportType::NewKeyMaterial);
    }
    req.send().await.map(|_| ())
}

async fn describe(kms: &aws_sdk_kms::Client, key_id: &str) -> aws_sdk_kms::types::KeyMetadata {
    kms.describe_key().key_id(key_id).send().await.expect("describe").key_metadata.expect("metadata")
}

/// ListKeyRotations with IncludeKeyMaterial ALL_KEY_MATERIAL: every key material.
async fn all_material(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
) -> aws_sdk_kms::operation::list_key_rotations::ListKeyRotationsOutput {
    kms.list_key_rotations()
        .key_id(key_id)
        .include_key_material(aws_sdk_kms::types::IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .expect("ListKeyRotations ALL_KEY_MATERIAL")
}

#[tokio::test]
async fn imported_key_material_expires_and_rotates_on_demand_as_kms_documents() {
    use aws_sdk_kms::error::ProvideErrorMetadata;
    use aws_sdk_kms::types::{ImportState, KeyMaterialState, OriginType};
    let region = "eu-central-1";
    let admin = aws_sdk_kms::Client::new(&config_in(&context("key-admin").await, region));
    let lead = aws_sdk_kms::Client::new(&config_in(&context("security-lead").await, region));
    let encrypter = aws_sdk_kms::Client::new(&config_in(&context("app-encrypt").await, region));
    // CreateKey with Origin EXTERNAL: no material yet, unusable.
    let md = admin.create_key().origin(OriginType::External).send().await.expect("create").key_metadata.expect("md");
    let key_id = md.key_id().to_owned();
    assert_eq!(md.key_state().map(|s| s.as_str()), Some("PendingImport"));
    assert!(!md.enabled());
    let encrypt = || encrypter.encrypt().key_id(&key_id).plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()));
    let err = encrypt().send().await.expect_err("no material: no encryption");
    assert_eq!(err.code(), Some("KMSInvalidStateException"), "{err:?}");
    // Import material expiring in 5 days: Enabled, and DescribeKey says when it expires.
    let first = [7u8; 32];
    let valid_to = Utc::now() + Duration::days(5);
    import_material(&admin, &key_id, &first, Some(valid_to), false).await.expect("import");
    let md = describe(&admin, &key_id).await;
    assert_eq!(md.key_state().map(|s| s.as_str()), Some("Enabled"));
    assert_eq!(md.expiration_model().map(|m| m.as_str()), Some("KEY_MATERIAL_EXPIRES"));
    assert_eq!(md.valid_to().map(|t| t.secs()), Some(valid_to.timestamp()));
    encrypt().send().await.expect("usable now");
    // On-demand rotation needs new material in PENDING_ROTATION first.
    let err = lead.rotate_key_on_demand().key_id(&key_id).send().await.expect_err("nothing to rotate to");
    assert_eq!(err.code(), Some("KMSInvalidStateException"), "{err:?}");
    // Different material as EXISTING_KEY_MATERIAL is refused.
    let err = import_material(&admin, &key_id, &[9u8; 32], Some(valid_to), false).await.expect_err("not the same");
    assert_eq!(err.code(), Some("IncorrectKeyMaterialException"), "{err:?}");
    import_material(&admin, &key_id, &[8u8; 32], None, true).await.expect("new material");
    let all = all_material(&admin, &key_id).await;
    let states: Vec<_> = all.rotations().iter().map(|r| r.key_material_state().cloned()).collect();
    assert_eq!(states, [Some(KeyMaterialState::Current), Some(KeyMaterialState::PendingRotation)]);
    assert!(all.rotations().iter().all(|r| r.import_state() == Some(&ImportState::Imported)));
    assert_eq!(all.rotations()[0].valid_to().map(|t| t.secs()), Some(valid_to.timestamp()));
    assert!(all.rotations().iter().all(|r| r.rotation_date().is_none()), "no rotation completed yet");
    lead.rotate_key_on_demand().key_id(&key_id).send().await.expect("rotate on demand");
    let done = admin.list_key_rotations().key_id(&key_id).send().await.expect("rotations");
    assert_eq!(done.rotations().len(), 1, "{done:?}");
    let r = &done.rotations()[0];
    assert_eq!(r.rotation_type().map(|t| t.as_str()), Some("ON_DEMAND"));
    assert_eq!(r.key_material_state(), Some(&KeyMaterialState::Current));
    assert!(r.rotation_date().is_some_and(|d| (Utc::now().timestamp() - d.secs()).abs() < 120));
    // keydeck reads it: the expiry of the first (now non-current) material, the rotation.
    let ctx = AwsContext::connect(&ConnectOptions { regions: vec![region.into()], ..as_operator("key-admin") })
        .await
        .expect("context");
    let read = aws::kms::read_key(&ctx.regions()[0], &key_id).await.expect("read");
    let imported = read.imported.clone().expect("imported material read");
    assert_eq!(imported.valid_to.map(|t| t.timestamp()), Some(valid_to.timestamp()));
    assert_eq!(imported.materials.len(), 2);
    assert_eq!(read.rotation.ok().map(|r| r.history.len()), Some(1));
}

#[tokio::test]
async fn imported_key_material_past_its_valid_to_leaves_the_key_pending_import() {
    use aws_sdk_kms::types::{ImportState, OriginType};
    let region = "eu-central-1";
    let admin = aws_sdk_kms::Client::new(&config_in(&context("key-admin").await, region));
    let key_id = admin
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .expect("create")
        .key_metadata
        .expect("md")
        .key_id()
        .to_owned();
    let material = [5u8; 32];
    let valid_to = Utc::now() + Duration::seconds(3);
    import_material(&admin, &key_id, &material, Some(valid_to), false).await.expect("import");
    // KMS deletes expired material: poll DescribeKey until the key is PendingImport.
    let md = eventually("the key to become PendingImport", std::time::Duration::from_secs(30), || async {
        let md = admin.describe_key().key_id(&key_id).send().await.ok()?.key_metadata?;
        (md.key_state().map(|s| s.as_str()) == Some("PendingImport")).then_some(md)
    })
    .await;
    assert!(!md.enabled());
    assert_eq!(md.valid_to().map(|t| t.secs()), Some(valid_to.timestamp()), "ValidTo stays: the expiry is the story");
    let all = all_material(&admin, &key_id).await;
    assert_eq!(all.rotations().len(), 1);
    assert_eq!(all.rotations()[0].import_state(), Some(&ImportState::PendingImport));
    // Reimporting the same material makes it usable again.
    import_material(&admin, &key_id, &material, None, false).await.expect("reimport");
    let md = describe(&admin, &key_id).await;
    assert_eq!(md.key_state().map(|s| s.as_str()), Some("Enabled"));
    assert_eq!(md.expiration_model().map(|m| m.as_str()), Some("KEY_MATERIAL_DOES_NOT_EXPIRE"));
    assert!(md.valid_to().is_none());
}

#[tokio::test]
async fn a_multi_region_replica_is_described_as_a_replica_of_its_primary() {
    let estate = estate();
    let mr = estate.keys.iter().find(|k| k.multi_region && !k.replica_regions.is_empty()).expect("an MR key");
    let ctx = context("key-auditor").await;
    let home = aws_sdk_kms::Client::new(region_config(&ctx, &mr.region));
    let primary = home.describe_key().key_id(format!("alias/{}", mr.alias)).send().await.expect("primary");
    let primary = primary.key_metadata().expect("md");
    for region in &mr.replica_regions {
        let there = aws_sdk_kms::Client::new(region_config(&ctx, region));
        let replica = there.describe_key().key_id(primary.key_id()).send().await.expect("replica");
        let cfg = replica.key_metadata().and_then(|m| m.multi_region_configuration()).expect("MR configuration");
        assert_eq!(cfg.multi_region_key_type().map(|t| t.as_str()), Some("REPLICA"));
        assert_eq!(cfg.primary_key().and_then(|p| p.arn()), primary.arn());
        assert_eq!(cfg.primary_key().and_then(|p| p.region()), Some(mr.region.as_str()));
        assert!(cfg.replica_keys().iter().any(|r| r.region() == Some(region.as_str())));
        // Aliases are regional: the replica has none of the primary's.
        let aliases = there.list_aliases().key_id(primary.key_id()).send().await.expect("aliases");
        assert!(aliases.aliases().is_empty(), "{aliases:?}");
        // Rotation is the primary's.
        let st = there.get_key_rotation_status().key_id(primary.key_id()).send().await.expect("rotation");
        assert_eq!(st.key_rotation_enabled(), mr.rotation);
    }
    // Describing the replica does not turn the primary into one.
    let again = home.describe_key().key_id(primary.key_id()).send().await.expect("primary again");
    let cfg = again.key_metadata().and_then(|m| m.multi_region_configuration()).expect("MR configuration");
    assert_eq!(cfg.multi_region_key_type().map(|t| t.as_str()), Some("PRIMARY"));
    assert_eq!(
        cfg.replica_keys().iter().filter_map(|r| r.region()).collect::<Vec<_>>(),
        mr.replica_regions.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn secrets_answer_schedule_expressions_next_rotation_dates_and_replicas() {
    use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
    let estate = estate();
    let ctx = context("key-auditor").await;
    for es in &estate.secrets {
        let sm = aws_sdk_secretsmanager::Client::new(region_config(&ctx, &es.region));
        let d = sm.describe_secret().secret_id(&es.name).send().await.expect("describe");
        assert_eq!(d.primary_region(), Some(es.region.as_str()), "{}: PrimaryRegion is its own Region", es.name);
        let rules = d.rotation_rules();
        if let Some(expr) = &es.rotation_schedule {
            assert_eq!(d.rotation_enabled(), Some(true), "{}", es.name);
            assert_eq!(rules.and_then(|r| r.schedule_expression()), Some(expr.as_str()), "{}", es.name);
        }
        // NextRotationDate: from the last rotation by the period, or from a value put by hand.
        let period = es
            .rotation_days
            .or_else(|| es.rotation_schedule.as_deref().and_then(keydeck::domain::status::schedule_period_days));
        if let (Some(days), Some(last)) = (period, es.last_rotated_days_ago) {
            let from = es.value_replaced_days_ago.filter(|v| *v < last && es.rotation_days.is_some()).unwrap_or(last);
            let next = d.next_rotation_date().map(|t| t.secs()).unwrap_or_else(|| panic!("{}: no next", es.name));
            let want = (Utc::now() - Duration::days(from) + Duration::days(days)).timestamp();
            assert!((next - want).abs() < 2 * 86_400, "{}: next {next}, want ~{want}", es.name);
        }
        // Replicas: listed by the primary, and described in their Region as replicas of it.
        let listed: Vec<&str> = d.replication_status().iter().filter_map(|r| r.region()).collect();
        assert_eq!(listed, es.replica_regions.iter().map(String::as_str).collect::<Vec<_>>(), "{}", es.name);
        for r in &es.replica_regions {
            let there = aws_sdk_secretsmanager::Client::new(region_config(&ctx, r));
            let rd = there.describe_secret().secret_id(&es.name).send().await.expect("replica");
            assert_eq!(rd.primary_region(), Some(es.region.as_str()));
        }
    }
    // AutomaticallyAfterDays and ScheduleExpression together are refused.
    let lead = aws_sdk_secretsmanager::Client::new(region_config(&context("security-lead").await, "eu-north-1"));
    let err = lead
        .rotate_secret()
        .secret_id("BANKID_CLIENT_SECRET")
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(30)
                .schedule_expression("rate(30 days)")
                .build(),
        )
        .rotate_immediately(false)
        .send()
        .await
        .expect_err("both rules");
    assert_eq!(err.code(), Some("InvalidParameterException"), "{err:?}");
}

#[tokio::test]
async fn a_cron_schedule_expression_sets_the_next_rotation_date() {
    use chrono::{Datelike, TimeZone};
    // The security lead may create secrets only under the approval store's prefix: a probe there.
    let lead = aws_sdk_secretsmanager::Client::new(region_config(&context("security-lead").await, "eu-north-1"));
    let name = format!("keydeck/approvals/schedule-probe-{}", std::process::id());
    lead.create_secret().name(&name).secret_string("probe").send().await.expect("create");
    let expr = "cron(0 16 1,15 * ? *)";
    lead.rotate_secret()
        .secret_id(&name)
        .rotation_rules(aws_sdk_secretsmanager::types::RotationRulesType::builder().schedule_expression(expr).build())
        .rotate_immediately(false)
        .send()
        .await
        .expect("rotate with a cron schedule");
    let d = lead.describe_secret().secret_id(&name).send().await.expect("describe");
    assert_eq!(d.rotation_enabled(), Some(true));
    let rules = d.rotation_rules().expect("rules");
    assert_eq!(rules.schedule_expression(), Some(expr));
    assert_eq!(rules.automatically_after_days(), None, "a cron schedule has no fixed number of days");
    // The next 1st or 15th of a month at 16:00 UTC after now.
    let now = Utc::now();
    let want = (0..62)
        .map(|d| now.date_naive() + chrono::Days::new(d))
        .filter(|day| day.day() == 1 || day.day() == 15)
        .filter_map(|day| Utc.from_local_datetime(&day.and_hms_opt(16, 0, 0)?).single())
        .find(|t| *t > now)
        .expect("a run within two months");
    let next = d.next_rotation_date().expect("NextRotationDate").secs();
    assert_eq!(next, want.timestamp(), "next {next}, want {want}");
}

/// ListKeyRotations takes a key ID or key ARN, no alias (KMS API reference, KeyId): an alias
/// is a NotFoundException, not a server error; each entry's KeyId is the key's id, also for
/// a rotation asked for by ARN.
#[tokio::test]
async fn list_key_rotations_refuses_an_alias_and_names_the_key_by_its_id() {
    use aws_sdk_kms::error::ProvideErrorMetadata;
    let region = "eu-north-1";
    let admin = aws_sdk_kms::Client::new(&config_in(&context("key-admin").await, region));
    let lead = aws_sdk_kms::Client::new(&config_in(&context("security-lead").await, region));
    let m = admin.create_key().description("rotation ids").send().await.expect("CreateKey").key_metadata;
    let m = m.expect("metadata");
    let (id, arn) = (m.key_id().to_owned(), m.arn().expect("arn").to_owned());
    let alias = format!("alias/rotation-ids-{}", std::process::id());
    admin.create_alias().alias_name(&alias).target_key_id(&id).send().await.expect("CreateAlias");
    lead.rotate_key_on_demand().key_id(&arn).send().await.expect("RotateKeyOnDemand by ARN");
    lead.rotate_key_on_demand().key_id(&id).send().await.expect("RotateKeyOnDemand by id");

    for reference in [&id, &arn] {
        let out = admin.list_key_rotations().key_id(reference).send().await.expect("ListKeyRotations");
        let ids: Vec<Option<&str>> = out.rotations().iter().map(|r| r.key_id()).collect();
        assert_eq!(ids, [Some(id.as_str()), Some(id.as_str())], "by {reference}");
    }
    let alias_arn = format!("{}:{alias}", arn.rsplit_once(":key/").expect("key ARN").0);
    for reference in [alias.as_str(), alias_arn.as_str()] {
        let err = admin.list_key_rotations().key_id(reference).send().await.expect_err("no alias");
        let se = err.as_service_error().expect("a service error (4xx), not a retried 500");
        assert_eq!(se.code(), Some("NotFoundException"), "{reference}: {se:?}");
        assert!(se.message().unwrap_or("").contains(reference), "{reference}: {se:?}");
    }
}
