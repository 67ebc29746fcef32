//! `keydeck approvals …`: dual-approval key operations from the command line (issue 11).
//! The flow and what it trusts are `runtime::approvals`'; here the arguments, the
//! read-only guard, the output and the exit codes.

use chrono::Utc;

use super::env::{connect_checked, json, write_allowed, Env, Failure};
use crate::cli::{exit, ApprovalsCommand, TableFormat};
use crate::runtime::approvals::{self as flow, ApprovalError, Listed, Listing, Proposal};

pub async fn run(env: &Env, cmd: &ApprovalsCommand) -> Result<u8, Failure> {
    let matrix = &env.policy.approvals;
    let data = env.data_dir.as_path();
    match cmd {
        ApprovalsCommand::Propose { operation, key, window_days, reason } => {
            write_allowed(env, "propose", "the request store in AWS")?;
            if reason.trim().is_empty() {
                return Err(Failure::new(exit::USAGE, "--reason: say why"));
            }
            let (ctx, me) = connect_checked(&env.chain_options()).await?;
            let p = Proposal { operation, window_days: *window_days, key, reason };
            let r = flow::propose(&ctx, data, matrix, &me, &p, Utc::now()).await.map_err(failure)?;
            println!("{}", r.id);
            Ok(exit::OK)
        }
        ApprovalsCommand::List { format } => {
            let (ctx, me) = connect_checked(&env.chain_options()).await?;
            let l = flow::list(&ctx, data, matrix, &me).await.map_err(failure)?;
            flow::note_expired(data, &me, &flow::expired_for_me(&l, matrix, &me)).await.map_err(failure)?;
            match format {
                TableFormat::Json => println!("{}", json(&l)?),
                TableFormat::Table => print!("{}", listing(&l)),
            }
            Ok(exit::OK)
        }
        ApprovalsCommand::Show { id, format } => {
            let (ctx, _) = connect_checked(&env.chain_options()).await?;
            let v = flow::show(&ctx, id).await.map_err(failure)?;
            match format {
                TableFormat::Json => println!("{}", json(&v)?),
                TableFormat::Table => print!("{}", detail(&v)),
            }
            Ok(exit::OK)
        }
        ApprovalsCommand::Approve { id, confirm, format } => {
            write_allowed(env, "approve", "the request store in AWS")?;
            let (ctx, me) = connect_checked(&env.chain_options()).await?;
            let done = flow::approve(&ctx, data, matrix, &me, id, confirm).await.map_err(failure)?;
            match format {
                TableFormat::Json => println!("{}", json(&done)?),
                TableFormat::Table => {
                    println!("request {} approved by {} and executed: {}", done.id, done.approver, done.outcome);
                }
            }
            Ok(exit::OK)
        }
        ApprovalsCommand::Reject { id, reason } => {
            write_allowed(env, "reject", "the request store in AWS")?;
            let (ctx, me) = connect_checked(&env.chain_options()).await?;
            flow::reject(&ctx, data, matrix, &me, id, reason).await.map_err(failure)?;
            println!("request {id} rejected");
            Ok(exit::OK)
        }
        ApprovalsCommand::Withdraw { id } => {
            write_allowed(env, "withdraw", "the request store in AWS")?;
            let (ctx, me) = connect_checked(&env.chain_options()).await?;
            flow::withdraw(&ctx, data, matrix, &me, id).await.map_err(failure)?;
            println!("request {id} withdrawn");
            Ok(exit::OK)
        }
    }
}

/// An approval failure as one line and an exit code.
fn failure(e: ApprovalError) -> Failure {
    match e {
        ApprovalError::Aws(a) => a.into(),
        ApprovalError::Usage(m) | ApprovalError::NotFound(m) => Failure::new(exit::USAGE, m),
        e @ ApprovalError::Refused(_) => Failure::new(exit::REFUSED, e.to_string()),
        ApprovalError::Config(m) => Failure::new(exit::CONFIG, m),
        ApprovalError::NotYet(m) => Failure::new(exit::NOT_YET, m),
        ApprovalError::Failed(m) => Failure::new(exit::STEP_FAILED, m),
    }
}

fn line(v: &Listed) -> String {
    let r = &v.request;
    let op = match r.operation {
        crate::domain::approval::Operation::ScheduleDeletion { window_days } => {
            format!("schedule-deletion ({window_days} days)")
        }
        o => o.name().to_owned(),
    };
    let who = match (&v.proposer, v.state.as_str()) {
        (Some(p), _) => p.as_str(),
        (None, "proposed") => "(proposer not attested by CloudTrail yet)",
        // A listing looks up the proposer of open requests only.
        (None, _) => "(proposer not looked up for ended requests: see `approvals show`)",
    };
    format!(
        "{}  {:<9}  {op}  {}  by {who}  expires {}  {}",
        v.id,
        v.state_label(),
        r.target_arn,
        r.expires.to_rfc3339(),
        r.reason
    )
}

fn listing(l: &Listing) -> String {
    let mut out = String::new();
    let mut section = |title: &str, views: &[Listed]| {
        out.push_str(&format!("{title} ({})\n", views.len()));
        for v in views {
            out.push_str(&format!("  {}\n", line(v)));
        }
    };
    section("Waiting for me", &l.waiting_for_me);
    section("Mine", &l.mine);
    section("Open, for others", &l.open);
    section("History", &l.history);
    if !l.malformed.is_empty() {
        out.push_str(&format!("Malformed entries ({})\n", l.malformed.len()));
        for m in &l.malformed {
            out.push_str(&format!("  {}  {}\n", m.id, m.problem));
        }
    }
    out
}

fn detail(v: &Listed) -> String {
    let r = &v.request;
    let calls: Vec<String> =
        r.calls().iter().map(|c| format!("{} {}", c.action, serde_json::Value::Object(c.parameters.clone()))).collect();
    let mut out = format!(
        "request   {}\noperation {}\ntarget    {}\ncalls     {}\nreason    {}\ncreated   {}\nexpires   {}\nhash      {}\nstate     {}\nproposer  {}\n",
        v.id,
        r.operation.name(),
        r.target_arn,
        calls.join("; "),
        r.reason,
        r.created.to_rfc3339(),
        r.expires.to_rfc3339(),
        r.content_hash,
        if v.executed_but_failed() { "executed, and the call failed (see the note)" } else { v.state_label() },
        v.proposer.as_deref().unwrap_or("(not attested by CloudTrail yet)"),
    );
    out.push_str(&format!("content   {}\n", v.content.describe()));
    if let Some(by) = &v.by {
        out.push_str(&format!("by        {by}\n"));
    }
    if let Some(n) = &v.note {
        out.push_str(&format!("note      {n}\n"));
    }
    out
}
