//! The console's approvals task (issue 11): lists the request store for this operator
//! every [`RELOAD_EVERY_SECS`] seconds and whenever asked (`Action::LoadApprovals`), and
//! carries out the approvals' actions (read a target key, propose, approve, reject,
//! withdraw) through [`crate::runtime::approvals`], answering with messages. Listings
//! run one at a time (asks that arrive during one are folded into the next); the other
//! actions run as their own tasks so a slow CloudTrail lookup never holds up the dialog.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::app::approvals::RELOAD_EVERY_SECS;
use crate::app::{Action, Msg};
use crate::aws::AwsContext;
use crate::domain::approval::Listing;
use crate::domain::identity::CallerIdentity;
use crate::domain::policy::Policy;
use crate::runtime::approvals::{self as flow, ApprovalError, Proposal};

/// Who acts and where: fixed for the console's life.
#[derive(Clone)]
pub struct Actor {
    pub ctx: AwsContext,
    pub data_dir: PathBuf,
    pub policy: Arc<Policy>,
    pub me: CallerIdentity,
    /// `--allow-write`: without it every transition is refused (the app refuses first).
    pub write: bool,
}

/// Run until the console drops its sender.
pub async fn worker(actor: Actor, mut rx: UnboundedReceiver<Action>, tx: UnboundedSender<Msg>) {
    let mut every = tokio::time::interval(Duration::from_secs(RELOAD_EVERY_SECS));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let action = tokio::select! {
            a = rx.recv() => match a {
                Some(a) => a,
                None => break,
            },
            _ = every.tick() => Action::LoadApprovals,
        };
        if action != Action::LoadApprovals {
            spawn_act(&actor, action, &tx);
            continue;
        }
        // Asks to list that queued up meanwhile are answered by this one listing.
        while let Ok(queued) = rx.try_recv() {
            if queued != Action::LoadApprovals {
                spawn_act(&actor, queued, &tx);
            }
        }
        let started = std::time::Instant::now();
        let listed = list(&actor).await;
        let ms = started.elapsed().as_millis() as u64;
        match &listed {
            Ok(l) => {
                tracing::info!(requests = l.rows().len(), waiting = l.waiting_for_me.len(), ms, "approvals listed")
            }
            Err(e) => tracing::warn!(ms, "{e}"),
        }
        let msg = Msg::ApprovalsLoaded(listed);
        if tx.send(msg).is_err() {
            break;
        }
        every.reset();
    }
}

fn spawn_act(actor: &Actor, action: Action, tx: &UnboundedSender<Msg>) {
    let (actor, tx) = (actor.clone(), tx.clone());
    tokio::spawn(async move {
        if let Some(msg) = act(&actor, action).await {
            let _ = tx.send(msg);
        }
    });
}

async fn list(a: &Actor) -> Result<Listing, String> {
    let l = flow::list(&a.ctx, &a.data_dir, &a.policy.approvals, &a.me)
        .await
        .map_err(|e| format!("approvals: listing the request store failed: {e}"))?;
    // Expired requests of mine or mine to approve go to my journal once (approval.expired).
    flow::note_expired(&a.data_dir, &a.me, &flow::expired_for_me(&l, &a.policy.approvals, &a.me))
        .await
        .map_err(|e| format!("approvals: recording an expired request in the journal failed: {e}"))?;
    Ok(l)
}

/// One approvals action; `None` for actions that are not the approvals'.
async fn act(a: &Actor, action: Action) -> Option<Msg> {
    let matrix = &a.policy.approvals;
    let (ctx, data, me) = (&a.ctx, a.data_dir.as_path(), &a.me);
    let writes = matches!(
        action,
        Action::ApprovalPropose { .. }
            | Action::ApprovalApprove { .. }
            | Action::ApprovalReject { .. }
            | Action::ApprovalWithdraw { .. }
    );
    if writes && !a.write {
        return Some(Msg::ApprovalDone(Err("read-only console: restart keydeck with --allow-write".into())));
    }
    let done = match action {
        Action::ReadApprovalTarget { arn } => {
            let region = arn.split(':').nth(3).unwrap_or_default().to_owned();
            let read = match ctx.regions().iter().find(|r| r.region == region) {
                Some(rc) => crate::aws::kms::read_key(rc, &arn).await.map(Box::new).map_err(|e| e.to_string()),
                None => Err(format!("the key is in {region}, which is not selected: add --region {region}")),
            };
            return Some(Msg::ApprovalTargetRead { arn, read });
        }
        Action::ApprovalPropose { key_arn, reason } => {
            let p = Proposal { operation: "rotate-key", window_days: None, key: &key_arn, reason: &reason };
            flow::propose(ctx, data, matrix, me, &p, Utc::now()).await.map(|r| {
                let approver = matrix.rule(r.operation.kind()).approver_role().to_owned();
                format!(
                    "request {} proposed: rotate-key (kms:RotateKeyOnDemand) of {}; a {approver} approves it (6)",
                    r.id, r.target_arn
                )
            })
        }
        Action::ApprovalApprove { id, confirm } => flow::approve(ctx, data, matrix, me, &id, &confirm)
            .await
            .map(|d| format!("request {id} approved by you and executed ({}): {}", d.call, d.outcome)),
        Action::ApprovalReject { id, reason } => {
            flow::reject(ctx, data, matrix, me, &id, &reason).await.map(|()| format!("request {id} rejected: {reason}"))
        }
        Action::ApprovalWithdraw { id } => {
            flow::withdraw(ctx, data, matrix, me, &id).await.map(|()| format!("request {id} withdrawn"))
        }
        _ => return None,
    };
    Some(Msg::ApprovalDone(done.map_err(|e| match e {
        ApprovalError::NotYet(m) => format!("not yet: {m}"),
        e => e.to_string(),
    })))
}
