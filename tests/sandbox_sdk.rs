//! Integration tests through the real AWS SDK against the sandbox (moto with IAM
//! enforcement): identities, typed access-denied errors, signatures, the seeded estate.

mod common;

use chrono::{Duration, Utc};
use common::*;
use keydeck::aws::{self, AwsContext, AwsErrorKind};
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
        assert_eq!(s.rotation_enabled, es.rotation_days.is_some(), "{}", es.name);
        assert_eq!(s.rotation_days, es.rotation_days, "{}", es.name);
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
