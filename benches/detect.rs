//! Parse and evaluate all detection rules over 100,000 CloudTrail records on one thread
//! (issue 6 target: ≥ 200,000 records/s), and push 1,000,000 events through the feed in
//! batches of 50 with a capacity of 10,000, checking its memory bound.
//!
//!     cargo bench --bench detect                          # the criterion runs
//!     cargo bench --bench detect -- --write-jsonl FILE    # write the 100k records, exit
//!
//! The records are in the shape the sandbox writes (src/sandbox/moto_sandbox.py, one
//! AWS-schema record a line), generated deterministically: the Drop and Trove keys of
//! assets/estate.toml, the operators of the sandbox, a day's mix of Decrypt,
//! GenerateDataKey, DescribeKey, AccessDenied, GetSecretValue, STS and the odd
//! ScheduleKeyDeletion, 2 % of them delivered up to 5 minutes late.
//! benches/detect_vs_jq.sh runs `jq` over the same records side by side.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, SamplingMode, Throughput};

use keydeck::domain::detect::{Detector, KeyIndex};
use keydeck::domain::feed::Feed;
use keydeck::domain::inventory::{
    Fetched, Inventory, KeyItem, KeyManager, KeyRotation, KeyState, RegionInventory, SecretItem,
};
use keydeck::domain::policy::Policy;
use keydeck::domain::trail::{parse_event, TrailEvent};

const RECORDS: usize = 100_000;
const FEED_EVENTS: usize = 1_000_000;
const FEED_BATCH: usize = 50;
const FEED_CAPACITY: usize = 10_000;
const ACCOUNT: &str = "123456789012";
const UA: &str = "Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,Z,b,e cfg/retry-mode#standard Botocore/1.43.11";

/// The estate's keys: (alias, region, key id).
const KEYS: &[(&str, &str, &str)] = &[
    ("drop-national-id-key", "eu-north-1", "b7beef95-6dbd-47e9-9caf-66177f67f29d"),
    ("drop-db-master-key", "eu-north-1", "b1bef59c-6d27-4f7f-b125-9a7376b0a15e"),
    ("drop-kyc-key", "eu-north-1", "a4030fea-cec9-4c2f-9de9-c961dfa9a153"),
    ("drop-field-hmac-key", "eu-north-1", "71a68d78-9db3-4e30-a4ec-f9d0f74eb631"),
    ("drop-jwt-private-key", "eu-north-1", "5e2d7c1a-3b4f-4c8e-9a6d-0f1e2d3c4b5a"),
    ("drop-backup-key", "eu-west-1", "42061725-1075-4662-8f0c-f98dcc974d5b"),
    ("trove-vendor-smtp-key", "eu-west-1", "8d9ae998-321b-4f35-9045-bf6eda807306"),
    ("trove-oauth-token-key", "eu-west-1", "0cbf3c0e-0048-4953-bbf5-1f3cc90a35d8"),
    ("trove-s3-sse-key", "eu-west-1", "22f6272b-2f4e-4744-8dc2-17096d401a2c"),
    ("trove-oauth-token-key-2023", "eu-west-1", "6c39526a-130f-4ce8-8c7a-e9bff56ce1e2"),
];

const SECRETS: &[&str] = &["JWT_SECRET", "SUMSUB_SECRET_KEY", "BANKID_CLIENT_SECRET", "DATABASE_URL"];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn id(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
    fn token(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| A[self.below(A.len() as u64) as usize] as char).collect()
    }
}

fn identity(user: &str) -> String {
    let key: u64 = user.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    format!(
        r#"{{"type":"IAMUser","principalId":"{:020x}","arn":"arn:aws:iam::{ACCOUNT}:user/{user}","accountId":"{ACCOUNT}","accessKeyId":"AKIA{:016X}","userName":"{user}"}}"#,
        key, key
    )
}

fn key_arn(region: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/{id}")
}

#[allow(clippy::too_many_arguments)]
fn record(
    rng: &mut Rng,
    at: DateTime<Utc>,
    user: &str,
    source: &str,
    name: &str,
    region: &str,
    error: Option<(&str, String)>,
    params: &str,
    response: &str,
    read_only: bool,
    resource: Option<&str>,
) -> String {
    let error = match error {
        Some((code, msg)) => format!(r#""errorCode":"{code}","errorMessage":"{msg}","#),
        None => String::new(),
    };
    let resources = match resource {
        Some(arn) => format!(r#""resources":[{{"accountId":"{ACCOUNT}","type":"AWS::KMS::Key","ARN":"{arn}"}}],"#),
        None => String::new(),
    };
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{},"eventTime":"{}","eventSource":"{source}","eventName":"{name}","awsRegion":"{region}","sourceIPAddress":"127.0.0.1","userAgent":"{UA}",{error}"requestParameters":{params},"responseElements":{response},"requestID":"{}","eventID":"{}","readOnly":{read_only},{resources}"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{ACCOUNT}","eventCategory":"Management"}}"#,
        identity(user),
        at.format("%Y-%m-%dT%H:%M:%SZ"),
        rng.token(52),
        rng.id(),
    )
}

/// 100,000 records over ~14 hours (a night and most of a working day).
fn records() -> Vec<String> {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let start = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).single().unwrap_or_default();
    let mut out = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let mut at = start + Duration::milliseconds(i as i64 * 500);
        if rng.below(50) == 0 {
            at -= Duration::seconds(rng.below(300) as i64); // delivered late
        }
        let (alias, region, id) = KEYS[rng.below(KEYS.len() as u64) as usize];
        let arn = key_arn(region, id);
        let by_alias = rng.below(2) == 0;
        let key_param = if by_alias { format!("alias/{alias}") } else { arn.clone() };
        let kms = "kms.amazonaws.com";
        let roll = rng.below(1000);
        let r = match roll {
            0..=339 => {
                // The app decrypts with every key; compliance only national ids (004 §7);
                // now and then someone else (the anomaly the rules are for).
                let (user, region, arn) = match rng.below(100) {
                    0..=79 => ("app-runner", region, arn),
                    80..=98 => ("compliance-decrypt", KEYS[0].1, key_arn(KEYS[0].1, KEYS[0].2)),
                    _ => ("on-call", region, arn),
                };
                let params = format!(r#"{{"encryptionAlgorithm":"SYMMETRIC_DEFAULT","keyId":"{arn}"}}"#);
                record(&mut rng, at, user, kms, "Decrypt", region, None, &params, "null", true, Some(&arn))
            }
            340..=589 => {
                // app-encrypt encrypts national ids and KYC documents; the app anything.
                let (user, region, arn, key_param) = if rng.below(2) == 0 {
                    let (alias, region, id) = KEYS[[0, 2][rng.below(2) as usize]];
                    ("app-encrypt", region, key_arn(region, id), format!("alias/{alias}"))
                } else {
                    ("app-runner", region, arn, key_param)
                };
                let params = format!(r#"{{"keyId":"{key_param}","keySpec":"AES_256"}}"#);
                record(&mut rng, at, user, kms, "GenerateDataKey", region, None, &params, "null", true, Some(&arn))
            }
            590..=689 => {
                let params = format!(r#"{{"keyId":"{key_param}"}}"#);
                record(&mut rng, at, "key-auditor", kms, "DescribeKey", region, None, &params, "null", true, Some(&arn))
            }
            690..=769 => {
                let (name, params, res) = if rng.below(2) == 0 {
                    ("Decrypt", r#"{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#.to_owned(), None)
                } else {
                    ("DescribeKey", format!(r#"{{"keyId":"{key_param}"}}"#), Some(arn.as_str()))
                };
                let msg = format!(
                    "User: arn:aws:iam::{ACCOUNT}:user/outsider is not authorized to perform: kms:{name} because no identity-based policy allows the kms:{name} action"
                );
                record(
                    &mut rng,
                    at,
                    "outsider",
                    kms,
                    name,
                    region,
                    Some(("AccessDenied", msg)),
                    &params,
                    "null",
                    true,
                    res,
                )
            }
            770..=919 => {
                let secret = SECRETS[rng.below(SECRETS.len() as u64) as usize];
                let user = if rng.below(200) == 0 { "on-call" } else { "app-runner" };
                let params = format!(r#"{{"secretId":"{secret}"}}"#);
                record(
                    &mut rng,
                    at,
                    user,
                    "secretsmanager.amazonaws.com",
                    "GetSecretValue",
                    "eu-north-1",
                    None,
                    &params,
                    "null",
                    true,
                    None,
                )
            }
            920..=949 => {
                let name = ["ListKeys", "ListAliases"][rng.below(2) as usize];
                record(&mut rng, at, "key-auditor", kms, name, region, None, "null", "null", true, None)
            }
            950..=989 => {
                let user = ["key-admin", "security-lead", "on-call"][rng.below(3) as usize];
                record(
                    &mut rng,
                    at,
                    user,
                    "sts.amazonaws.com",
                    "GetCallerIdentity",
                    "eu-north-1",
                    None,
                    "null",
                    "null",
                    true,
                    None,
                )
            }
            990..=998 if rng.below(4) > 0 => {
                let params = format!(r#"{{"keyId":"{key_param}"}}"#);
                record(
                    &mut rng,
                    at,
                    "key-auditor",
                    kms,
                    "GetKeyRotationStatus",
                    region,
                    None,
                    &params,
                    "null",
                    true,
                    Some(&arn),
                )
            }
            990..=998 => {
                let name = ["CreateGrant", "DisableKey", "EnableKey", "PutKeyPolicy"][rng.below(4) as usize];
                let params = format!(r#"{{"keyId":"{key_param}"}}"#);
                let response = format!(r#"{{"keyId":"{arn}"}}"#);
                record(&mut rng, at, "security-lead", kms, name, region, None, &params, &response, false, Some(&arn))
            }
            _ if rng.below(5) > 0 => {
                record(&mut rng, at, "key-auditor", kms, "ListAliases", region, None, "null", "null", true, None)
            }
            _ => {
                let denied = rng.below(2) == 0;
                let user = if denied { "outsider" } else { "key-admin" };
                let params = format!(r#"{{"keyId":"{key_param}","pendingWindowInDays":7}}"#);
                let (error, response) = if denied {
                    let msg = format!(
                        "User: arn:aws:iam::{ACCOUNT}:user/outsider is not authorized to perform: kms:ScheduleKeyDeletion on resource: {arn} because no identity-based policy allows the kms:ScheduleKeyDeletion action"
                    );
                    (Some(("AccessDenied", msg)), "null".to_owned())
                } else {
                    (
                        None,
                        format!(
                            r#"{{"keyId":"{arn}","keyState":"PendingDeletion","deletionDate":"Dec 1, 2026, 1:30:21 AM","pendingWindowInDays":7}}"#
                        ),
                    )
                };
                record(
                    &mut rng,
                    at,
                    user,
                    kms,
                    "ScheduleKeyDeletion",
                    region,
                    error,
                    &params,
                    &response,
                    false,
                    Some(&arn),
                )
            }
        };
        out.push(r);
    }
    out
}

/// The estate's inventory, judged by the default policy.
fn index() -> KeyIndex {
    let policy = Policy::default_policy().unwrap_or_else(|e| panic!("default policy: {e}"));
    let mut regions: BTreeMap<&str, RegionInventory> = BTreeMap::new();
    for (alias, region, id) in KEYS {
        let r =
            regions.entry(region).or_insert_with(|| RegionInventory { region: (*region).into(), ..Default::default() });
        r.keys.push(KeyItem {
            region: (*region).into(),
            key_id: (*id).into(),
            arn: key_arn(region, id),
            aliases: vec![(*alias).into()],
            description: String::new(),
            state: KeyState::Enabled,
            manager: KeyManager::Customer,
            spec: "SYMMETRIC_DEFAULT".into(),
            usage: "ENCRYPT_DECRYPT".into(),
            origin: "AWS_KMS".into(),
            created: None,
            deletion_date: None,
            multi_region: None,
            problem: None,
            custom_key_store: None,
            rotation: Fetched::Ok(KeyRotation::default()),
            tags: Fetched::Ok(BTreeMap::new()),
            key_policy: Fetched::NotFetched,
            imported: None,
            multi_region_keys: None,
        });
    }
    if let Some(r) = regions.get_mut("eu-north-1") {
        for name in SECRETS {
            r.secrets.push(SecretItem {
                region: "eu-north-1".into(),
                name: (*name).into(),
                arn: format!("arn:aws:secretsmanager:eu-north-1:{ACCOUNT}:secret:{name}-AbCdEf"),
                description: String::new(),
                rotation_enabled: false,
                rotation_days: None,
                last_rotated: None,
                last_accessed: None,
                next_rotation: None,
                created: None,
                deleted: None,
                kms_key: None,
                tags: BTreeMap::new(),
                last_changed: None,
                rotation_schedule: None,
                current_version_created: Fetched::NotFetched,
                primary_region: None,
            });
        }
    }
    let inv = Inventory { regions: regions.into_values().collect(), fetched_at: None };
    KeyIndex::from_inventory(&inv, &policy)
}

fn detector() -> Detector {
    let policy = Policy::default_policy().unwrap_or_else(|e| panic!("default policy: {e}"));
    Detector::for_policy(&policy)
}

/// Alerts per rule over all records (printed once, before timing).
fn alerts_by_rule(records: &[String], keys: &KeyIndex) -> BTreeMap<String, usize> {
    let mut det = detector();
    let mut by_rule = BTreeMap::new();
    for ev in records.iter().filter_map(|r| parse_event(r).ok()) {
        for a in det.observe(&ev, keys) {
            *by_rule.entry(format!("{}/{}", a.rule, a.severity)).or_insert(0) += 1;
        }
    }
    by_rule
}

/// Parse and evaluate every record; returns (parsed, alerts).
fn parse_and_detect(records: &[String], keys: &KeyIndex) -> (usize, usize) {
    let mut det = detector();
    let (mut parsed, mut alerts) = (0, 0);
    for r in records {
        if let Ok(ev) = parse_event(r) {
            parsed += 1;
            alerts += det.observe(&ev, keys).len();
        }
    }
    (parsed, alerts)
}

fn feed_event(template: &TrailEvent, i: usize, start: DateTime<Utc>) -> TrailEvent {
    let mut e = template.clone();
    e.event_id = i.to_string();
    e.event_time = start + Duration::milliseconds(i as i64 * 100);
    e
}

/// 1,000,000 events in polls of 50: each poll also repeats 10 of the previous one
/// (overlap). Asserts the feed's bound after every poll.
fn feed_run(template: &TrailEvent) -> (usize, usize) {
    let start = template.event_time;
    let mut feed = Feed::new(FEED_CAPACITY);
    let (mut fresh, mut max_ids) = (0usize, 0usize);
    let mut next = 0usize;
    while next < FEED_EVENTS {
        let end = (next + FEED_BATCH).min(FEED_EVENTS);
        let mut batch: Vec<TrailEvent> = (next..end).rev().map(|i| feed_event(template, i, start)).collect();
        batch.extend((next.saturating_sub(10)..next).map(|i| feed_event(template, i, start)));
        fresh += feed.insert(batch).len();
        let s = feed.stats();
        assert!(s.retained <= FEED_CAPACITY && s.remembered_ids <= 2 * FEED_CAPACITY, "{s:?}");
        max_ids = max_ids.max(s.remembered_ids);
        next = end;
    }
    assert_eq!(fresh, FEED_EVENTS, "every event exactly once");
    (fresh, max_ids)
}

fn benches(c: &mut Criterion, records: &[String]) {
    let keys = index();
    let (parsed, alerts) = parse_and_detect(records, &keys);
    let jq_like = records
        .iter()
        .filter(|r| r.contains(r#""eventName":"ScheduleKeyDeletion""#) || r.contains(r#""errorCode":"#))
        .count();
    let bytes: usize = records.iter().map(|r| r.len() + 1).sum();
    eprintln!(
        "detect: {} records ({:.1} MB), {parsed} parsed, {alerts} alerts; {jq_like} records match the jq filter",
        records.len(),
        bytes as f64 / 1e6
    );
    eprintln!("alerts by rule: {:?}", alerts_by_rule(records, &keys));

    let mut g = c.benchmark_group("detect");
    g.sampling_mode(SamplingMode::Flat).sample_size(10).measurement_time(StdDuration::from_secs(8));
    g.throughput(Throughput::Elements(records.len() as u64));
    g.bench_function("parse_and_detect_100k", |b| b.iter(|| black_box(parse_and_detect(black_box(records), &keys))));
    g.bench_function("parse_only_100k", |b| {
        b.iter(|| records.iter().filter(|r| parse_event(black_box(r)).is_ok()).count())
    });
    g.finish();

    let template = parse_event(&records[0]).unwrap_or_else(|e| panic!("record 0: {e}"));
    let (fresh, max_ids) = feed_run(&template);
    eprintln!(
        "feed: {fresh} events in batches of {FEED_BATCH}, capacity {FEED_CAPACITY}: at most {max_ids} ids held (bound {})",
        2 * FEED_CAPACITY
    );
    let mut g = c.benchmark_group("feed");
    g.sampling_mode(SamplingMode::Flat).sample_size(10).measurement_time(StdDuration::from_secs(10));
    g.throughput(Throughput::Elements(FEED_EVENTS as u64));
    g.bench_function("insert_1m_batches_of_50_capacity_10k", |b| b.iter(|| black_box(feed_run(&template))));
    g.bench_function("build_events_only_1m", |b| {
        b.iter(|| {
            let start = template.event_time;
            (0..FEED_EVENTS).map(|i| feed_event(&template, i, start).event_id.len()).sum::<usize>()
        })
    });
    g.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--write-jsonl") {
        let Some(path) = args.get(pos + 1) else {
            eprintln!("--write-jsonl needs a file name");
            std::process::exit(2);
        };
        let out = std::fs::File::create(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut out = std::io::BufWriter::new(out);
        for r in records() {
            writeln!(out, "{r}").unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        out.flush().unwrap_or_else(|e| panic!("{path}: {e}"));
        eprintln!("wrote {RECORDS} records to {path}");
        return;
    }
    let records = records();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &records);
    c.final_summary();
}
