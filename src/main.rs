//! keydeck's entry point: parse the command line, set up logging, run the chosen command,
//! and turn every failure into one clear line on stderr and a documented exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use std::sync::Arc;
use std::time::Instant;

use keydeck::app::feed::{subject, touches_key_role};
use keydeck::app::poller::{poll_once, Pacer, PollConfig};
use keydeck::app::run::{run_console, ConsoleConfig};
use keydeck::app::Session;
use keydeck::aws::{self, AwsContext, AwsErrorKind, ConnectOptions, ContextError};
use keydeck::cli::{exit, Cli, Command, GlobalOpts, ReviewFormat, SandboxCommand, SandboxOpts, TableFormat, Traffic};
use keydeck::cli::{AlertsArgs, FeedArgs};
use keydeck::domain::assessment::assess;
use keydeck::domain::detect::{Detector, KeyIndex, KeyInfo, Severity};
use keydeck::domain::feed::Feed;
use keydeck::domain::identity::CallerIdentity;
use keydeck::domain::policy::{Policy, DEFAULT_POLICY_NAME};
use keydeck::domain::trail::{parse_event, TrailEvent};
use keydeck::report;
use keydeck::sandbox::{self, Sandbox, SandboxError, StartOptions};

/// A failure to report: one line, one exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<SandboxError> for Failure {
    fn from(e: SandboxError) -> Self {
        let code = match e {
            SandboxError::NotRunning { .. } | SandboxError::UnknownOperator { .. } => exit::CONFIG,
            _ => exit::SANDBOX,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<ContextError> for Failure {
    fn from(e: ContextError) -> Self {
        match e {
            ContextError::Aws(a) => aws_failure(a),
            other => Failure::new(exit::CONFIG, other.to_string()),
        }
    }
}

fn aws_failure(e: aws::AwsError) -> Failure {
    let code = match e.kind {
        AwsErrorKind::UnknownProfile => exit::CONFIG,
        AwsErrorKind::Unreachable => exit::UNREACHABLE,
        AwsErrorKind::AccessDenied
        | AwsErrorKind::NoCredentials
        | AwsErrorKind::InvalidCredentials
        | AwsErrorKind::BadSignature
        | AwsErrorKind::ExpiredCredentials => exit::AUTH,
        _ => exit::INTERNAL,
    };
    Failure::new(code, e.to_string())
}

fn main() -> ExitCode {
    let started = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keydeck: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let result = runtime.block_on(run(cli, started));
    // Background tasks (sandbox pipes, AWS calls) must not hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("keydeck: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli, started: Instant) -> Result<u8, Failure> {
    let g = cli.global;
    let data_dir = data_dir(&g)?;
    let _log_guard = init_logging(&data_dir);
    let (policy, policy_name) = load_policy(g.policy.as_deref())?;
    tracing::info!(policy = %policy.name, keys = policy.keys.len(), "policy loaded");
    match cli.command {
        None => console(&g, chain_options(&g), &data_dir, Arc::new(policy), policy_name, started, 10.0).await,
        Some(Command::Inventory(args)) => {
            let (ctx, identity) = connect_checked(&chain_options(&g)).await?;
            let mut inv = aws::fetch_inventory(&ctx).await;
            if !args.aws_managed {
                for r in &mut inv.regions {
                    r.keys.retain(|k| k.manager != keydeck::domain::inventory::KeyManager::Aws);
                }
            }
            let regions = ctx.region_names();
            let a = assess(&inv, &policy, chrono::Utc::now(), &regions);
            let problems: Vec<String> = inv.problems().cloned().collect();
            match args.format {
                TableFormat::Table => print!("{}", report::table(&a, &problems)),
                TableFormat::Json => {
                    let out = report::InventoryReport {
                        generated_at: a.at.unwrap_or_else(chrono::Utc::now),
                        identity: &identity,
                        regions: &regions,
                        policy: &policy_name,
                        summary: report::Summary::of(&a),
                        items: &a.items,
                        drift: report::drift_out(&a),
                        external: &a.external,
                        problems,
                        check_failed: a.fails_check(),
                    };
                    println!("{}", json(&out)?);
                }
            }
            Ok(if args.check && a.fails_check() { exit::CHECK_FAILED } else { exit::OK })
        }
        Some(Command::Review(args)) => {
            let (ctx, identity) = connect_checked(&chain_options(&g)).await?;
            let inv = aws::fetch_inventory(&ctx).await;
            let regions = ctx.region_names();
            let a = assess(&inv, &policy, chrono::Utc::now(), &regions);
            let problems: Vec<String> = inv.problems().cloned().collect();
            let journal = review_journal_path(&data_dir, &identity.account);
            let last = keydeck::app::run::last_review(&journal).map_err(|e| Failure::new(exit::CONFIG, e))?;
            let changes: Vec<keydeck::domain::review::Change> =
                last.as_ref().map(|r| keydeck::domain::review::changes_since(r, &a)).unwrap_or_default();
            let mut change_text: Vec<String> = changes.iter().map(|c| c.describe()).collect();
            if let Some(r) = &last {
                change_text.insert(0, format!("last review {} by {}", r.at.format("%Y-%m-%d %H:%M UTC"), r.reviewer));
            }
            match args.format {
                ReviewFormat::Markdown => print!(
                    "{}",
                    report::review_markdown(&a, &identity, &regions, &policy_name, &problems, &change_text)
                ),
                ReviewFormat::Json => {
                    let findings: Vec<_> = a.items.iter().filter(|i| i.judgement.status.needs_attention()).collect();
                    let external: Vec<_> = a.external.iter().filter(|x| x.judgement.status.needs_attention()).collect();
                    let pending: Vec<_> = a.items.iter().filter(|i| i.deletion_date.is_some()).collect();
                    let out = serde_json::json!({
                        "generated_at": a.at,
                        "reviewer": identity,
                        "regions": regions,
                        "policy": policy_name,
                        "summary": report::Summary::of(&a),
                        "findings": findings,
                        "external": external,
                        "pending_deletion": pending,
                        "drift": report::drift_out(&a),
                        "problems": problems,
                        "last_review": last.as_ref().map(|r| serde_json::json!({"at": r.at, "reviewer": r.reviewer})),
                        "changes_since_last_review": changes,
                    });
                    println!("{}", json(&out)?);
                }
            }
            Ok(exit::OK)
        }
        Some(Command::Demo(args)) => {
            let sb = start_sandbox(&data_dir, &args.sandbox).await?;
            let opts = sb.info.connect_options(&args.operator, &g.regions);
            let result = match opts {
                // The sandbox answers fast and delivers in seconds: poll often in the demo.
                Ok(opts) => console(&g, opts, &data_dir, Arc::new(policy), policy_name, started, 3.0).await,
                Err(e) => Err(e.into()),
            };
            sb.stop().await;
            result
        }
        Some(Command::Feed(args)) => feed_command(&g, &args, &policy).await,
        Some(Command::Alerts(args)) => alerts_command(&g, &args, &policy).await,
        Some(Command::Sandbox(SandboxCommand::Up(opts))) => sandbox_up(&data_dir, &opts).await,
        Some(Command::Sandbox(SandboxCommand::Env { operator })) => {
            let info = sandbox::find_running(&data_dir.join("sandbox")).await?;
            print!("{}", info.env_exports(&operator)?);
            Ok(exit::OK)
        }
        Some(Command::Completions { shell }) => {
            keydeck::cmd::to_stdout(|out| keydeck::cmd::completions::write_completions(shell, out))
                .map(|()| exit::OK)
                .map_err(|e| Failure::new(exit::INTERNAL, format!("writing completions: {e}")))
        }
        Some(Command::Man) => keydeck::cmd::to_stdout(keydeck::cmd::man::write_man)
            .map(|()| exit::OK)
            .map_err(|e| Failure::new(exit::INTERNAL, format!("writing the man page: {e}"))),
    }
}

/// Read CloudTrail events of every selected region over [from, until], deduplicated and
/// in event-time order; unreadable records are counted, not fatal.
async fn read_trail(
    ctx: &AwsContext,
    policy: &Policy,
    cfg: &PollConfig,
    pacers: &mut [Pacer],
    feed: &mut Feed,
    from: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<TrailEvent>, usize), aws::AwsError> {
    // Every selected region, then IAM's global events (recorded in us-east-1).
    let mut targets: Vec<(aws::RegionConfig, PollConfig)> =
        ctx.regions().iter().map(|rc| (rc.clone(), cfg.clone())).collect();
    targets.push((ctx.global(), cfg.for_iam()));
    let polls = targets.iter().zip(pacers.iter_mut()).map(|((rc, c), p)| poll_once(rc, c, p, from, until));
    let mut parsed = Vec::new();
    let mut skipped = 0;
    for r in futures::future::join_all(polls).await {
        for (_, raw) in r?.records {
            match parse_event(&raw) {
                Ok(ev) if ev.event_source == keydeck::domain::trail::IAM_SOURCE && !touches_key_role(&ev, policy) => {}
                Ok(ev) => parsed.push(ev),
                Err(e) => {
                    skipped += 1;
                    tracing::warn!("skipped an unreadable CloudTrail record: {e}");
                }
            }
        }
    }
    Ok((feed.insert(parsed), skipped))
}

/// Key names for display: aliases of every region (no per-key calls).
async fn light_key_index(ctx: &AwsContext, account: &str) -> KeyIndex {
    let mut idx = KeyIndex::new();
    for rc in ctx.regions() {
        let Ok(list) = aws::kms::aliases(rc).await else { continue };
        for (id, names) in list {
            let arn = format!("arn:aws:kms:{}:{account}:key/{id}", rc.region);
            let mut refs = vec![id.clone(), arn.clone()];
            refs.extend(names.iter().map(|n| format!("alias/{n}")));
            let info = KeyInfo {
                alias: names.first().cloned().unwrap_or(id),
                region: rc.region.clone(),
                classification: None,
                allowed_principals: vec![],
                expected_regions: vec![],
                managed: false,
                arn,
            };
            idx.insert_key(&refs, info);
        }
    }
    idx
}

fn print_events(events: &[TrailEvent], keys: &KeyIndex, format: TableFormat) -> Result<(), Failure> {
    use keydeck::domain::text::inert;
    for e in events {
        match format {
            TableFormat::Json => {
                let mut v = serde_json::to_value(e).map_err(|e| Failure::new(exit::INTERNAL, e.to_string()))?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("subject".into(), serde_json::Value::String(subject(e, keys)));
                }
                println!("{}", serde_json::to_string(&v).map_err(|e| Failure::new(exit::INTERNAL, e.to_string()))?);
            }
            TableFormat::Table => println!(
                "{}  {:<10}  {:<24}  {:<28}  {:<28}  {:<12}  {}",
                e.event_time.format("%Y-%m-%d %H:%M:%S"),
                e.region,
                inert(&e.event_name),
                inert(&e.principal.short_name()),
                inert(&subject(e, keys)),
                inert(e.outcome()),
                inert(&e.source_ip)
            ),
        }
    }
    Ok(())
}

async fn feed_command(g: &GlobalOpts, args: &FeedArgs, policy: &Policy) -> Result<u8, Failure> {
    let (ctx, identity) = connect_checked(&chain_options(g)).await?;
    let keys = light_key_index(&ctx, &identity.account).await;
    let cfg = PollConfig { max_pages: 200, interval: poll_interval(g, 10.0), ..PollConfig::default() };
    let mut pacers: Vec<Pacer> = (0..=ctx.regions().len()).map(|_| Pacer::new(cfg.min_gap)).collect();
    let mut feed = Feed::new(100_000);
    let mut from = chrono::Utc::now() - args.since;
    loop {
        let until = chrono::Utc::now();
        match read_trail(&ctx, policy, &cfg, &mut pacers, &mut feed, from, until).await {
            Ok((new, skipped)) => {
                print_events(&new, &keys, args.format)?;
                if skipped > 0 {
                    eprintln!("keydeck: skipped {skipped} unreadable CloudTrail record(s); see the log");
                }
            }
            Err(e) if args.follow => eprintln!("keydeck: {e} (retrying)"),
            Err(e) => return Err(aws_failure(e)),
        }
        if !args.follow {
            return Ok(exit::OK);
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(exit::OK),
        }
        from = until - cfg.overlap;
    }
}

async fn alerts_command(g: &GlobalOpts, args: &AlertsArgs, policy: &Policy) -> Result<u8, Failure> {
    let threshold: Severity = args.fail_on.parse().map_err(|e: keydeck::domain::detect::SeverityParseError| {
        Failure::new(exit::USAGE, format!("--fail-on: {e}"))
    })?;
    let (ctx, _identity) = connect_checked(&chain_options(g)).await?;
    let inv = aws::fetch_inventory(&ctx).await;
    for p in inv.problems() {
        tracing::warn!("inventory: {p}");
    }
    let keys = KeyIndex::from_inventory(&inv, policy);
    let cfg = PollConfig { max_pages: 200, ..PollConfig::default() };
    let mut pacers: Vec<Pacer> = (0..=ctx.regions().len()).map(|_| Pacer::new(cfg.min_gap)).collect();
    let mut feed = Feed::new(1_000_000);
    let until = chrono::Utc::now();
    let (events, skipped) =
        read_trail(&ctx, policy, &cfg, &mut pacers, &mut feed, until - args.since, until).await.map_err(aws_failure)?;
    let mut detector = Detector::for_policy(policy);
    let alerts = detector.observe_backfill(&events, &keys);
    match args.format {
        TableFormat::Json => {
            let out = serde_json::json!({
                "since": (until - args.since),
                "until": until,
                "events": events.len(),
                "skipped_records": skipped,
                "alerts": alerts,
            });
            println!("{}", json(&out)?);
        }
        TableFormat::Table => {
            use keydeck::domain::text::inert;
            for a in &alerts {
                println!(
                    "{}  {:<8}  {:<44}  {:<28}  {}",
                    a.at.format("%Y-%m-%d %H:%M:%S"),
                    a.severity.as_str(),
                    inert(&a.title),
                    inert(a.key.as_deref().or(a.secret.as_deref()).unwrap_or("-")),
                    inert(&a.principal)
                );
            }
            println!("{} alert(s) over {} events", alerts.len(), events.len());
        }
    }
    Ok(if alerts.iter().any(|a| a.severity.at_least(threshold)) { exit::CHECK_FAILED } else { exit::OK })
}

/// The CloudTrail poll interval: `--poll`, else the command's default; at least 1 s.
fn poll_interval(g: &GlobalOpts, default_secs: f64) -> std::time::Duration {
    let secs = g.poll.unwrap_or(default_secs);
    std::time::Duration::from_secs_f64(if secs.is_finite() { secs.clamp(1.0, 3600.0) } else { default_secs })
}

fn chain_options(g: &GlobalOpts) -> ConnectOptions {
    ConnectOptions {
        profile: g.profile.clone(),
        regions: g.regions.clone(),
        endpoint_url: g.endpoint_url.clone(),
        static_credentials: None,
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(v).map_err(|e| Failure::new(exit::INTERNAL, format!("serialising JSON: {e}")))
}

/// Build the per-region SDK configs, resolve credentials and ask STS who we are.
async fn connect_checked(opts: &ConnectOptions) -> Result<(AwsContext, CallerIdentity), Failure> {
    let ctx = AwsContext::connect(opts).await?;
    aws::check_credentials(&ctx, opts.profile.as_deref()).await.map_err(aws_failure)?;
    let identity = preflight(&ctx).await?;
    Ok((ctx, identity))
}

async fn console(
    g: &GlobalOpts,
    opts: ConnectOptions,
    data_dir: &Path,
    policy: Arc<Policy>,
    policy_name: String,
    started: Instant,
    default_poll: f64,
) -> Result<u8, Failure> {
    let (ctx, identity) = connect_checked(&opts).await?;
    let session = Session {
        identity,
        regions: ctx.region_names(),
        profile: opts.profile.clone(),
        endpoint: opts.endpoint_url.clone(),
        write_enabled: g.allow_write,
        policy_name,
        data_dir: data_dir.display().to_string(),
        log_file: data_dir.join("keydeck.log").display().to_string(),
    };
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let cache_path =
        keydeck::app::cache::path(data_dir, opts.endpoint_url.as_deref(), &session.identity.account, &session.regions);
    let review_journal = Some(review_journal_path(data_dir, &session.identity.account));
    let alerts_journal = Some(data_dir.join("journal").join(format!("alerts-{}.jsonl", session.identity.account)));
    let poll = PollConfig { interval: poll_interval(g, default_poll), ..PollConfig::default() };
    let cfg = ConsoleConfig {
        session,
        policy,
        color,
        cache_path: Some(cache_path),
        started,
        review_journal,
        alerts_journal,
        poll: Some(poll),
        full_refresh_every: std::time::Duration::from_secs(15 * 60),
    };
    run_console(ctx, cfg).await.map_err(|e| Failure::new(exit::INTERNAL, format!("terminal error: {e}")))?;
    Ok(exit::OK)
}

/// Check credentials and reachability before taking over the terminal, so that bad input
/// gets one clear line instead of an empty console.
async fn preflight(ctx: &AwsContext) -> Result<CallerIdentity, Failure> {
    match tokio::time::timeout(std::time::Duration::from_secs(45), aws::sts::caller_identity(ctx)).await {
        Ok(Ok(id)) => Ok(id),
        Ok(Err(e)) => Err(aws_failure(e)),
        Err(_) => Err(Failure::new(
            exit::UNREACHABLE,
            format!(
                "sts:GetCallerIdentity in {} timed out after 45 s — check the endpoint and network",
                ctx.home().region
            ),
        )),
    }
}

async fn start_sandbox(data_dir: &Path, opts: &SandboxOpts) -> Result<Sandbox, Failure> {
    let start = StartOptions {
        port: opts.port,
        trail_delay_secs: opts.trail_delay,
        traffic: opts.traffic == Traffic::Demo,
        bulk_keys: opts.bulk_keys,
        bulk_secrets: opts.bulk_secrets,
    };
    Ok(Sandbox::start(&data_dir.join("sandbox"), &start).await?)
}

async fn sandbox_up(data_dir: &Path, opts: &SandboxOpts) -> Result<u8, Failure> {
    let sb = start_sandbox(data_dir, opts).await?;
    let names: Vec<&str> = sb.info.operators.keys().map(String::as_str).collect();
    println!("keydeck sandbox running at {} (moto {})", sb.info.endpoint, sb.info.moto_version);
    println!("account {}, regions {}", sb.info.account_id, sb.info.regions.join(", "));
    println!("operators: {}", names.join(", "));
    println!("act as one in another shell:  eval \"$(keydeck sandbox env --as key-admin)\"");
    println!("Ctrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
    sb.stop().await;
    println!("sandbox stopped");
    Ok(exit::OK)
}

/// Reviews of one account live in one hash-chained journal.
fn review_journal_path(data_dir: &Path, account: &str) -> PathBuf {
    data_dir.join("journal").join(format!("reviews-{account}.jsonl"))
}

fn data_dir(g: &GlobalOpts) -> Result<PathBuf, Failure> {
    let dir = match &g.data_dir {
        Some(d) => d.clone(),
        None => directories::ProjectDirs::from("", "", "keydeck")
            .map(|p| p.data_dir().to_path_buf())
            .ok_or_else(|| Failure::new(exit::CONFIG, "no home directory: pass --data-dir"))?,
    };
    sandbox::create_private_dir(&dir).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
    Ok(dir)
}

fn init_logging(dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("keydeck.log")).ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYDECK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("keydeck=info,warn"));
    tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_env_filter(filter).try_init().ok()?;
    Some(guard)
}

fn load_policy(path: Option<&Path>) -> Result<(Policy, String), Failure> {
    match path {
        None => Policy::default_policy()
            .map(|p| (p, DEFAULT_POLICY_NAME.to_owned()))
            .map_err(|e| Failure::new(exit::INTERNAL, e.to_string())),
        Some(p) => {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(p)
                .map_err(|e| Failure::new(exit::CONFIG, format!("cannot read policy file {name}: {e}")))?;
            Policy::parse(&name, &text).map(|pol| (pol, name)).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))
        }
    }
}
