//! Shared test fixtures: one seeded sandbox per test binary, started on first use and
//! stopped when the test process exits (the driver exits when its stdin pipe closes).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_cloudtrail::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudtrail::operation::lookup_events::builders::LookupEventsFluentBuilder;
use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
use aws_sdk_cloudtrail::types::{Event, LookupAttribute, LookupAttributeKey};
use serde_json::Value;

use keydeck::aws::{AwsContext, ConnectOptions, StaticCredentials};
use keydeck::sandbox::{Sandbox, SandboxInfo, StartOptions};

/// The estate the sandbox seeds, parsed from `assets/estate.toml` (tests compare against
/// this data, not against hard-coded results).
#[derive(Debug, serde::Deserialize)]
pub struct Estate {
    pub account_id: String,
    pub regions: Vec<String>,
    pub keys: Vec<EstateKey>,
    pub secrets: Vec<EstateSecret>,
    pub operators: Vec<EstateOperator>,
    #[serde(default)]
    pub topics: Vec<EstateTopic>,
}

#[derive(Debug, serde::Deserialize)]
pub struct EstateTopic {
    pub name: String,
    pub region: String,
}

/// The applications' data at rest under a key (made when the sandbox is seeded).
#[derive(Debug, serde::Deserialize)]
pub struct StoredData {
    pub principal: String,
    pub records: u32,
    pub purpose: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct EstateKey {
    pub alias: String,
    pub region: String,
    #[serde(default)]
    pub extra_aliases: Vec<String>,
    pub spec: Option<String>,
    pub usage: Option<String>,
    pub created_days_ago: i64,
    #[serde(default)]
    pub rotation: bool,
    #[serde(default)]
    pub rotations_days_ago: Vec<i64>,
    pub state: Option<String>,
    pub deletion_window_days: Option<i64>,
    pub deletion_scheduled_days_ago: Option<i64>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    pub stored_data: Option<StoredData>,
    /// `EXTERNAL`: imported key material.
    pub origin: Option<String>,
    pub material_expires_in_days: Option<i64>,
    #[serde(default)]
    pub multi_region: bool,
    #[serde(default)]
    pub replica_regions: Vec<String>,
    /// The rotation status the default policy gives it (`overdue`, `alert`, ...).
    #[serde(default)]
    pub expect_status: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct EstateSecret {
    pub name: String,
    pub region: String,
    pub created_days_ago: i64,
    pub rotation_days: Option<i64>,
    /// RotationRules.ScheduleExpression instead of rotation_days.
    pub rotation_schedule: Option<String>,
    pub last_rotated_days_ago: Option<i64>,
    pub value_replaced_days_ago: Option<i64>,
    pub kms_key: Option<String>,
    #[serde(default)]
    pub replica_regions: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct EstateOperator {
    pub name: String,
    pub role: String,
    pub actions: Vec<String>,
}

pub fn estate() -> Estate {
    toml::from_str(keydeck::sandbox::ESTATE).expect("assets/estate.toml parses")
}

/// A fresh private directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("keydeck-test-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The shared sandbox: the one this test binary started, else a new one without
/// background traffic (tests make their own calls).
pub fn sandbox() -> &'static SandboxInfo {
    shared_sandbox(None)
}

/// The shared sandbox with the demo's background traffic (the application principals
/// call their keys and read their stored data) and a CloudTrail delivery delay of one
/// second. A test binary uses either this or [`sandbox`], never both: call it before any
/// other helper (they all use the one sandbox started first).
pub fn sandbox_with_traffic() -> &'static SandboxInfo {
    shared_sandbox(Some(&StartOptions { traffic: true, trail_delay_secs: 1.0, ..StartOptions::default() }))
}

/// The sandbox of this test binary, started on first use with `opts` (default: none);
/// a later caller asking for other options fails.
fn shared_sandbox(opts: Option<&StartOptions>) -> &'static SandboxInfo {
    static INFO: OnceLock<(bool, SandboxInfo)> = OnceLock::new();
    let (traffic, info) = INFO.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let opts = opts.cloned().unwrap_or_default();
        let traffic = opts.traffic;
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let dir = temp_dir("sandbox");
                match Sandbox::start(&dir, &opts).await {
                    Ok(sb) => {
                        let _ = tx.send(Ok(sb.info.clone()));
                        // Keep the sandbox (and its stdin pipe) alive for the whole test process.
                        std::future::pending::<()>().await;
                        drop(sb);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        match rx.recv() {
            Ok(Ok(info)) => (traffic, info),
            Ok(Err(e)) => panic!("sandbox failed to start: {e}"),
            Err(_) => panic!("sandbox thread died"),
        }
    });
    if let Some(o) = opts {
        assert_eq!(*traffic, o.traffic, "this test binary's sandbox was started with traffic = {traffic}");
    }
    info
}

/// Connection options acting as a seeded operator.
pub fn as_operator(name: &str) -> ConnectOptions {
    sandbox().connect_options(name, &[]).expect("seeded operator")
}

pub async fn context(name: &str) -> AwsContext {
    AwsContext::connect(&as_operator(name)).await.expect("context")
}

/// Options with an arbitrary key pair against the sandbox.
pub fn with_keys(access_key_id: &str, secret_access_key: &str) -> ConnectOptions {
    let info = sandbox();
    ConnectOptions {
        profile: None,
        regions: info.regions.clone(),
        endpoint_url: Some(info.endpoint.clone()),
        static_credentials: Some(StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }),
        approvals_region: None,
    }
}

/// An SDK config for a region of the context (for calls keydeck's aws layer doesn't make yet).
pub fn region_config<'a>(ctx: &'a AwsContext, region: &str) -> &'a aws_config::SdkConfig {
    &ctx.regions().iter().find(|r| r.region == region).expect("region selected").config
}

/// An SDK config acting as the context's operator in any region, also one the estate does
/// not use (tests that must not share CloudTrail's per-region throttle or delay pick their own).
pub fn config_in(ctx: &AwsContext, region: &str) -> aws_config::SdkConfig {
    let base = &ctx.regions().first().expect("the context has a region").config;
    base.to_builder().region(aws_types::region::Region::new(region.to_owned())).build()
}

/// A CloudTrail client acting as the context's operator in `region`.
pub fn cloudtrail_client(ctx: &AwsContext, region: &str) -> aws_sdk_cloudtrail::Client {
    aws_sdk_cloudtrail::Client::new(&config_in(ctx, region))
}

/// A raw HTTP/1.1 request to the shared sandbox (loopback): (status, head, body).
pub async fn sandbox_http(
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hostport = sandbox().endpoint.trim_start_matches("http://").to_owned();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in extra_headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    let mut s = tokio::net::TcpStream::connect(&hostport).await.expect("connect to the sandbox");
    s.write_all(req.as_bytes()).await.expect("send head");
    s.write_all(body).await.expect("send body");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read answer");
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    (status, head, resp[split + 4..].to_vec())
}

/// The shared sandbox's CloudTrail JSON Lines file (`GET /_sandbox/trail`).
pub async fn trail_file() -> PathBuf {
    let (status, _, body) = sandbox_http("GET", "/_sandbox/trail", &[], b"").await;
    assert_eq!(status, 200, "GET /_sandbox/trail");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("trail info is JSON");
    PathBuf::from(v["file"].as_str().expect("the sandbox writes a trail file"))
}

/// Every record in the trail file, parsed (one JSON object a line).
pub async fn trail_records() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(trail_file().await).expect("read the trail file");
    text.lines().map(|l| serde_json::from_str(l).expect("each trail line is one JSON record")).collect()
}

/// Set (Some) or drop (None) the CloudTrail delivery delay of one region of the shared
/// sandbox (`POST /_sandbox/trail-delay`); other regions keep the default.
pub async fn set_region_trail_delay(region: &str, seconds: Option<f64>) {
    let body = serde_json::json!({ "seconds": seconds, "region": region }).to_string();
    let (status, _, answer) = sandbox_http("POST", "/_sandbox/trail-delay", &[], body.as_bytes()).await;
    assert_eq!(status, 200, "trail-delay: {}", String::from_utf8_lossy(&answer));
}

/// The keydeck binary acting as a seeded operator against the shared sandbox through the
/// standard environment variables (as a script would), with a clean AWS environment.
pub fn keydeck_as(operator: &str, data_dir: &std::path::Path, regions: &str) -> std::process::Command {
    let info = sandbox();
    let op = info.operator(operator).expect("seeded operator");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_keydeck"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "KEYDECK_REGIONS" {
            c.env_remove(k);
        }
    }
    c.env("HOME", data_dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", &op.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &op.secret_access_key)
        .env("AWS_ENDPOINT_URL", &info.endpoint)
        .arg("--data-dir")
        .arg(data_dir.join("data"))
        .arg("--region")
        .arg(regions);
    c
}

// ---- CloudTrail LookupEvents (shared by the tests that read the sandbox's history)

pub type LookupResult = Result<LookupEventsOutput, SdkError<LookupEventsError>>;

/// One LookupEvents attribute (LookupEvents takes one per request).
pub fn attr(key: LookupAttributeKey, value: &str) -> LookupAttribute {
    LookupAttribute::builder().attribute_key(key).attribute_value(value).build().expect("lookup attribute")
}

/// Send a LookupEvents request, waiting out ThrottlingException (two requests a second
/// per region is the documented limit, and parallel tests may share a region).
pub async fn send(b: &LookupEventsFluentBuilder) -> LookupResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = b.clone().send().await;
        match &r {
            Err(e) if e.code() == Some("ThrottlingException") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await; // back-off, not synchronisation
            }
            _ => return r,
        }
    }
}

/// Every event of a query, following NextToken.
pub async fn all_events(b: LookupEventsFluentBuilder) -> Vec<Event> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out_page = send(&b.clone().set_next_token(token.clone())).await.expect("LookupEvents page");
        out.extend(out_page.events().iter().cloned());
        token = out_page.next_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}

/// Poll a query until `pred` holds for one of its events (records can arrive late).
pub async fn wait_for_event(b: LookupEventsFluentBuilder, what: &str, pred: impl Fn(&Event, &Value) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for e in all_events(b.clone()).await {
            if pred(&e, &record(&e)) {
                return e;
            }
        }
        assert!(Instant::now() < deadline, "no event {what} within 30 s");
        tokio::time::sleep(Duration::from_millis(500)).await; // poll interval under the 2/s limit
    }
}

/// The CloudTrail record an event carries, parsed.
pub fn record(e: &Event) -> Value {
    serde_json::from_str(e.cloud_trail_event().expect("CloudTrailEvent")).expect("CloudTrailEvent is JSON")
}

// ---- services without a Rust SDK in the project (SNS): boto3, through the sandbox's interpreter

/// Run a Python snippet (the sandbox's interpreter, `$KEYDECK_PYTHON` or `python3`, which
/// has boto3 since moto brings it) acting as a seeded operator against the shared sandbox
/// through the standard AWS environment variables; returns the snippet's stdout parsed as
/// JSON (the snippet prints one JSON value).
pub fn python_as(operator: &str, region: &str, code: &str) -> Value {
    let info = sandbox();
    let op = info.operator(operator).expect("seeded operator");
    let python = std::env::var("KEYDECK_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut c = std::process::Command::new(python);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    let out = c
        .env("HOME", temp_dir("python"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", &op.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &op.secret_access_key)
        .env("AWS_ENDPOINT_URL", &info.endpoint)
        .env("AWS_REGION", region)
        .env("AWS_DEFAULT_REGION", region)
        .env("AWS_MAX_ATTEMPTS", "1")
        .arg("-c")
        .arg(code)
        .output()
        .expect("run the sandbox's python");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("python printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A boto3 call as a Python expression on `client`, printed as `{"ok": answer}` or
/// `{"error": code, "status": HTTP status, "message": text}`.
pub fn boto3_call(service: &str, call: &str) -> String {
    format!(
        "import boto3, botocore, json\n\
         client = boto3.client({service:?})\n\
         try:\n    out = {call}\n    out.pop('ResponseMetadata', None)\n    print(json.dumps({{'ok': out}}, default=str))\n\
         except botocore.exceptions.ClientError as e:\n    \
         print(json.dumps({{'error': e.response['Error'].get('Code'), 'status': e.response['ResponseMetadata']['HTTPStatusCode'], 'message': e.response['Error'].get('Message')}}))\n"
    )
}

/// What was published to a topic of the shared sandbox (`GET /_sandbox/sns/messages`).
pub async fn sns_messages(topic: &str) -> Value {
    let (status, _, body) = sandbox_http("GET", &format!("/_sandbox/sns/messages?topic={topic}"), &[], b"").await;
    assert_eq!(status, 200, "sns messages: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

/// Make the applications read their stored data once now (`POST
/// /_sandbox/traffic/stored-reads`, what the demo traffic does at random): one entry per
/// record with its outcome ("ok" or the error code).
pub async fn stored_reads() -> Vec<Value> {
    let (status, _, body) = sandbox_http("POST", "/_sandbox/traffic/stored-reads", &[], b"").await;
    assert_eq!(status, 200, "stored reads: {}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    v["reads"].as_array().expect("reads").clone()
}

/// Ask `f` again (every 300 ms, up to `limit`) until it answers `Some`: for what AWS
/// delivers late (CloudTrail). Polling, not a fixed sleep: it returns as soon as it can.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(300)).await; // poll interval
    }
}

/// The sandbox's request counter (`GET /_sandbox/stats`): calls by `service:Action`.
pub async fn sandbox_stats() -> Value {
    let (status, _, body) = sandbox_http("GET", "/_sandbox/stats", &[], b"").await;
    assert_eq!(status, 200, "stats: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("stats are JSON")
}

// ---- one run of the keydeck binary

/// One keydeck run: exit code, stdout, stderr, and what was run (for messages).
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Ran {
    /// Run `c` to its end.
    pub fn of(mut c: std::process::Command, what: String) -> Self {
        Self::from_output(&c.output().expect("run keydeck"), what)
    }

    pub fn from_output(out: &std::process::Output, what: String) -> Self {
        Ran {
            code: out.status.code().expect("exit code, not a signal"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            what,
        }
    }

    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{}: exit {}\nstdout: {}\nstderr: {}", self.what, self.code, self.stdout, self.stderr);
        self
    }

    /// The one line on stderr (the contract for failures: one line, no panic).
    pub fn line(&self) -> &str {
        assert!(!self.stderr.contains("panicked"), "{}: panic: {}", self.what, self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}: one line on stderr expected, got: {}", self.what, self.stderr);
        lines[0]
    }

    /// A failure: its exit code and its one line on stderr, containing `needle`.
    pub fn fails(&self, code: i32, needle: &str) -> &Self {
        let line = self.line();
        assert_eq!(self.code, code, "{}: stdout {} stderr {}", self.what, self.stdout, self.stderr);
        assert!(line.contains(needle), "{}: {needle:?} not in {}", self.what, self.stderr);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}", self.what, self.stdout))
    }
}
