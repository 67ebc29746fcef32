//! `keydeck incident …`: the emergency revocation from the command line, on the same
//! log and with the same safety as the console: changing AWS needs --allow-write,
//! destructive steps need the alias typed (--confirm), a step that needs a note or a
//! file refuses without it.

use std::path::{Path, PathBuf};

use chrono::Utc;

use super::env::{connect_checked, json, write_allowed, Env, Failure};

/// What an incident's writes change, for the read-only refusal.
const INCIDENT_CHANGES: &str = "AWS and the incident log";
use crate::aws::{self, AwsContext};
use crate::cli::{exit, IncidentCommand, IncidentRunArgs, IncidentStartArgs, TableFormat};
use crate::domain::identity::CallerIdentity;
use crate::domain::runbook::{Plan, Refusal, StepInput};
use crate::incident::log::{self, verify, Access, IncidentId};
use crate::report;
use crate::runtime::incident::{IncidentError, OpenRequest, Runner, StepReport};

pub async fn run(env: &Env, cmd: &IncidentCommand) -> Result<u8, Failure> {
    match cmd {
        IncidentCommand::Start(args) => start(env, args).await,
        IncidentCommand::List { format } => list(env, *format),
        IncidentCommand::Status { id, format } => status(env, id, *format),
        IncidentCommand::Run(args) => run_step(env, args).await,
        IncidentCommand::Skip { id, step, reason } => {
            let (ctx, mut runner) = writer(env, id, step, "skip a step").await?;
            let r = runner.skip(&ctx, step, reason, Utc::now()).await.map_err(step_refused(step))?;
            finish(&r, TableFormat::Table)
        }
        IncidentCommand::Verify { target, online, format } => verify_cmd(env, target, *online, *format).await,
        IncidentCommand::Export { id, format } => export(env, id, *format),
    }
}

fn parse_id(id: &str) -> Result<IncidentId, Failure> {
    id.parse::<IncidentId>().map_err(|e| Failure::new(exit::USAGE, format!("{e}: see `keydeck incident list`")))
}

/// A step's failure as one line naming the step (`refused: disable: already done`).
fn step_refused(step: &str) -> impl Fn(IncidentError) -> Failure + '_ {
    move |e| refused_at(Some(step), e)
}

/// An incident failure as one line and an exit code.
fn refused(e: IncidentError) -> Failure {
    refused_at(None, e)
}

/// An incident failure as one line and an exit code; a refusal names `step` when given.
fn refused_at(step: Option<&str>, e: IncidentError) -> Failure {
    let refused = step.map_or_else(|| "refused: ".to_owned(), |s| format!("refused: {s}: "));
    match e {
        IncidentError::Aws(a) => a.into(),
        IncidentError::Refused(ref rs) => {
            // Name the flag that answers each refusal.
            let hints: Vec<String> = rs
                .iter()
                .filter_map(|r| match r {
                    Refusal::NeedsConfirmation { expected } | Refusal::ConfirmationMismatch { expected } => {
                        Some(format!("--confirm {expected}"))
                    }
                    Refusal::NeedsNote => Some("--note TEXT".into()),
                    Refusal::NeedsFile => Some("--file PATH".into()),
                    Refusal::NeedsReason => Some("--reason TEXT".into()),
                    _ => None,
                })
                .collect();
            let hint = if hints.is_empty() { String::new() } else { format!(" (add {})", hints.join(" ")) };
            let code = if rs.iter().all(Refusal::is_input) { exit::USAGE } else { exit::REFUSED };
            Failure::new(code, format!("{refused}{e}{hint}"))
        }
        IncidentError::NotAllowed(_) => Failure::new(exit::REFUSED, format!("{refused}{e}")),
        IncidentError::Input(_) => Failure::new(exit::USAGE, e.to_string()),
        IncidentError::NotYet(_) => Failure::new(exit::NOT_YET, e.to_string()),
        IncidentError::Log(l) => Failure::new(exit::CONFIG, l.to_string()),
        other => Failure::new(exit::CONFIG, other.to_string()),
    }
}

/// Connect and take the incident's write lock, once `step` is known to be one of its
/// runbook's steps.
async fn writer(env: &Env, id: &str, step: &str, what: &str) -> Result<(AwsContext, Runner), Failure> {
    write_allowed(env, what, INCIDENT_CHANGES)?;
    let id = parse_id(id)?;
    known_step(env, &id, step)?;
    let (ctx, identity) = connect_checked(&env.chain_options()).await?;
    let runner = resume(env, &id, &identity, &ctx.home().region)?;
    Ok((ctx, runner))
}

/// A step its runbook does not have is a typo (exit 2), said before connecting or taking
/// the lock, which another console may hold. The log is read without the lock; when it
/// cannot be read, taking the lock says why.
fn known_step(env: &Env, id: &IncidentId, step: &str) -> Result<(), Failure> {
    let Ok(read) = crate::runtime::incident::read_incident(&log::log_path(&env.data_dir, id), Utc::now()) else {
        return Ok(());
    };
    if read.runbook.step(step).is_some() {
        return Ok(());
    }
    let steps: Vec<&str> = read.runbook.steps.iter().map(|s| s.id.as_str()).collect();
    Err(Failure::new(
        exit::USAGE,
        format!("no step {step:?} in incident {} ({}): use one of {}", id.as_str(), read.runbook.id, steps.join(", ")),
    ))
}

fn resume(env: &Env, id: &IncidentId, identity: &CallerIdentity, home: &str) -> Result<Runner, Failure> {
    match Runner::resume(&env.data_dir, id, &env.policy, identity, home, Utc::now()).map_err(refused)? {
        Ok(r) => Ok(r),
        Err(access) => match *access {
            Access::ReadOnly { held_by: Some(h), .. } => Err(Failure::new(
                exit::CONFIG,
                format!("incident {} is open for writing by {h}: it can be read, not changed", id.as_str()),
            )),
            _ => Err(Failure::new(exit::CONFIG, format!("incident {} is held by another process", id.as_str()))),
        },
    }
}

async fn start(env: &Env, args: &IncidentStartArgs) -> Result<u8, Failure> {
    write_allowed(env, "open an incident", INCIDENT_CHANGES)?;
    if args.reason.trim().is_empty() {
        return Err(Failure::new(exit::USAGE, "--reason: say what happened"));
    }
    let (ctx, identity) = connect_checked(&env.chain_options()).await?;
    let (target, secret) = match (&args.key, &args.secret) {
        (Some(k), None) => (k.as_str(), false),
        (None, Some(s)) => (s.as_str(), true),
        _ => return Err(Failure::new(exit::USAGE, "give --key ALIAS or --secret NAME")),
    };
    let req =
        OpenRequest { target, secret, reason: &args.reason, detected_at: args.detected, alert: args.alert.as_deref() };
    let runner = Runner::open(&ctx, &env.data_dir, &env.policy, &identity, &req, Utc::now())
        .await
        .map_err(|e| not_found_target(e, &ctx, target, secret).unwrap_or_else(refused))?;
    println!("{}", runner.log.id().as_str());
    Ok(exit::OK)
}

/// A target that is not there (exit 2): a key that is a secret's name, or a secret that
/// is a key's alias, is the likely typo, so the other flag is named.
fn not_found_target(e: IncidentError, ctx: &AwsContext, target: &str, secret: bool) -> Result<Failure, IncidentError> {
    let described = if secret { "secretsmanager:DescribeSecret" } else { "kms:DescribeKey" };
    let IncidentError::Aws(a) = &e else { return Err(e) };
    if a.kind != aws::AwsErrorKind::NotFound || a.call != described {
        return Err(e);
    }
    let name = a.resource.as_deref().unwrap_or(target);
    // An alias or key id is looked for in every selected region; an ARN or a secret in one.
    let one_region = secret || target.starts_with("arn:");
    let regions = if one_region { a.region.clone() } else { ctx.region_names().join(", ") };
    let line = if secret {
        format!("{} found no secret {name} in {regions}: check its name or ARN and --region, or use --key ALIAS for a KMS key", a.call)
    } else {
        let bare = target.trim_start_matches("alias/");
        format!("{} found no key {name} in {regions}: check the alias, id or ARN and --region, or use --secret {bare} for a secret", a.call)
    };
    Ok(Failure::new(exit::USAGE, line))
}

fn list(env: &Env, format: TableFormat) -> Result<u8, Failure> {
    let ids = log::list(&env.data_dir)
        .map_err(|e| Failure::new(exit::CONFIG, format!("reading {}: {e}", env.data_dir.display())))?;
    let now = Utc::now();
    let mut rows = Vec::new();
    for id in ids {
        let path = log::log_path(&env.data_dir, &id);
        let plan = read_plan(&path, now);
        rows.push((id, plan));
    }
    match format {
        TableFormat::Json => {
            let out: Vec<_> = rows
                .iter()
                .map(|(id, p)| match p {
                    Ok(p) => serde_json::json!({"id": id.as_str(), "plan": p}),
                    Err(e) => serde_json::json!({"id": id.as_str(), "error": e}),
                })
                .collect();
            println!("{}", json(&out)?);
        }
        TableFormat::Table => {
            for (id, p) in &rows {
                match p {
                    Ok(p) => println!("{}", report::incident_line(id.as_str(), p)),
                    Err(e) => println!("{}  unreadable: {e}", id.as_str()),
                }
            }
        }
    }
    Ok(exit::OK)
}

/// The plan of a log read without the lock (status, list, export work while a console
/// holds the incident).
fn read_plan(path: &Path, now: chrono::DateTime<Utc>) -> Result<Plan, String> {
    crate::runtime::incident::read_incident(path, now).map(|r| r.plan)
}

fn status(env: &Env, id: &str, format: TableFormat) -> Result<u8, Failure> {
    let id = parse_id(id)?;
    let path = log::log_path(&env.data_dir, &id);
    if !path.exists() {
        return Err(Failure::new(exit::USAGE, format!("no incident {} in {}", id.as_str(), env.data_dir.display())));
    }
    let plan = read_plan(&path, Utc::now()).map_err(|e| Failure::new(exit::CONFIG, e))?;
    match format {
        TableFormat::Json => println!("{}", json(&plan)?),
        TableFormat::Table => print!("{}", report::incident_status(&plan)),
    }
    Ok(exit::OK)
}

async fn run_step(env: &Env, args: &IncidentRunArgs) -> Result<u8, Failure> {
    let (ctx, mut runner) = writer(env, &args.id, &args.step, "run a step").await?;
    for f in &args.file {
        if !f.is_file() {
            return Err(Failure::new(exit::USAGE, format!("--file {}: no such file", f.display())));
        }
    }
    let input = StepInput {
        note: args.note.clone(),
        confirm: args.confirm.as_deref().map(|c| c.trim().trim_start_matches("alias/").to_owned()),
        files: args.file.iter().map(|p| absolute(p).display().to_string()).collect(),
        principal_arn: None,
    };
    let r = runner.run(&ctx, &args.step, input, Utc::now).await.map_err(step_refused(&args.step))?;
    finish(&r, args.format)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// Print a step's report; exit 7 when AWS refused it (4 when for lack of permission).
fn finish(r: &StepReport, format: TableFormat) -> Result<u8, Failure> {
    match format {
        TableFormat::Json => println!("{}", json(r)?),
        TableFormat::Table => {
            print!("{}", report::step_report(&r.step, &r.result, &r.results));
            if let Some(d) = &r.detail {
                println!("{d}");
            }
        }
    }
    if let Some(p) = &r.anchor_problem {
        eprintln!("keydeck: warning: {p}");
    }
    match &r.error {
        None => Ok(exit::OK),
        Some(e) if r.result == "outcome_unknown" => {
            Err(Failure::new(exit::UNREACHABLE, format!("step {}: {e}", r.step)))
        }
        Some(e) if r.result == "approval_ended" => {
            Err(Failure::new(exit::STEP_FAILED, format!("step {}: {e}", r.step)))
        }
        Some(e) => {
            let denied = r.results.iter().any(|c| {
                c.error_code
                    .as_deref()
                    .is_some_and(|code| code.contains("AccessDenied") || code == "AuthorizationError")
            });
            Err(Failure::new(
                if denied { exit::AUTH } else { exit::STEP_FAILED },
                format!("step {} failed: {e}", r.step),
            ))
        }
    }
}

async fn verify_cmd(env: &Env, target: &str, online: bool, format: TableFormat) -> Result<u8, Failure> {
    let path = if Path::new(target).is_file() {
        PathBuf::from(target)
    } else {
        log::log_path(&env.data_dir, &parse_id(target)?)
    };
    if !path.exists() {
        return Err(Failure::new(exit::USAGE, format!("no incident log {}", path.display())));
    }
    let report = verify(&path).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
    let mut anchors = Vec::new();
    if online {
        let (ctx, _) = connect_checked(&env.chain_options()).await?;
        let checks = log::anchors_to_verify(&path).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
        for c in checks {
            let verdict = match &c.problem {
                Some(p) => Err(p.clone()),
                None => match aws::ops::verify_digest(
                    &ctx,
                    &c.anchor.key_arn,
                    c.anchor.signing_algorithm.as_str(),
                    &c.message,
                    &c.signature,
                )
                .await
                {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("KMS says the signature does not match the log".to_owned()),
                    Err(e) => return Err(e.into()),
                },
            };
            anchors.push((c.anchor_seq, c.line, c.anchor.head_seq, verdict));
        }
    }
    // Online, a log with records but no anchor proves nothing: it may be a rewrite.
    let unanchored = online && anchors.is_empty() && report.records > 0;
    let anchors_ok = anchors.iter().all(|a| a.3.is_ok()) && !unanchored;
    let intact = report.is_intact() && anchors_ok;
    match format {
        TableFormat::Json => {
            let a: Vec<_> = anchors
                .iter()
                .map(|(seq, line, head, v)| {
                    serde_json::json!({"anchor_seq": seq, "line": line, "signs_seq": head, "valid": v.is_ok(), "problem": v.as_ref().err()})
                })
                .collect();
            let out = serde_json::json!({
                "intact": intact,
                "records": report.records,
                "last_seq": report.last_seq,
                "tampering": report.tampering.as_ref().map(|t| t.to_string()),
                "torn_tail": report.torn_tail.as_ref().map(|t| t.line),
                "report": report.to_string(),
                "online": online,
                "anchors": a,
            });
            println!("{}", json(&out)?);
        }
        TableFormat::Table => {
            println!("{report}");
            for (seq, line, head, v) in &anchors {
                match v {
                    Ok(()) => println!("anchor {seq} (line {line}): kms:Verify OK for records 1..={head}"),
                    Err(p) => println!("anchor {seq} (line {line}): FAILED: {p}"),
                }
            }
        }
    }
    if intact {
        Ok(exit::OK)
    } else {
        let first = report
            .tampering
            .as_ref()
            .map(|f| f.to_string())
            .or_else(|| report.torn_tail.as_ref().map(|t| format!("incomplete last line {}", t.line)))
            .or_else(|| unanchored.then(|| "no anchor: nothing ties this log to KMS".to_owned()))
            .or_else(|| anchors.iter().find_map(|a| a.3.as_ref().err().map(|p| format!("anchor {}: {p}", a.0))))
            .unwrap_or_else(|| "verification failed".into());
        Err(Failure::new(exit::CHECK_FAILED, format!("{} fails verification: {first}", path.display())))
    }
}

fn export(env: &Env, id: &str, format: crate::cli::ExportFormat) -> Result<u8, Failure> {
    let id = parse_id(id)?;
    let path = log::log_path(&env.data_dir, &id);
    let view = log::read(&path).map_err(|e| Failure::new(exit::CONFIG, e.to_string()))?;
    let records = view.replay.incident_records();
    let plan = read_plan(&path, Utc::now()).map_err(|e| Failure::new(exit::CONFIG, e))?;
    match format {
        crate::cli::ExportFormat::Markdown => print!("{}", report::incident_markdown(&plan, &records)),
        crate::cli::ExportFormat::Json => println!("{}", json(&report::incident_timeline(&plan, &records))?),
    }
    Ok(exit::OK)
}
