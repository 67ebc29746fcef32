//! The runtime: terminal setup and restore, the message channel, input and tick tasks,
//! AWS tasks for actions, and coalesced drawing (one frame per burst of messages).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::app::msg::{Action, Msg};
use crate::app::state::{Session, State};
use crate::app::update::update;
use crate::aws::AwsContext;
use crate::domain::inventory::Fetched;
use crate::domain::policy::Policy;
use crate::incident::records::{acknowledgements, append_one, last_review, ACK_KIND, REVIEW_KIND};
use crate::runtime::incident::WorkerCmd;

/// What the console needs besides the AWS context.
pub struct ConsoleConfig {
    pub session: Session,
    pub policy: Arc<Policy>,
    pub color: bool,
    /// Where the inventory cache lives (`None`: no cache).
    pub cache_path: Option<PathBuf>,
    /// When the process started, to log the time to the first inventory frame.
    pub started: Instant,
    /// The journal that reviews are saved to (`None`: reviews cannot be saved).
    pub review_journal: Option<PathBuf>,
    /// The journal that alert acknowledgements are saved to.
    pub alerts_journal: Option<PathBuf>,
    /// CloudTrail polling (`None`: no feed).
    pub poll: Option<crate::runtime::poller::PollConfig>,
    /// Full inventory refresh period (the feed re-reads changed items in between).
    pub full_refresh_every: Duration,
}

/// Open the console and run it until the operator quits. The terminal is restored on
/// every exit path, panics included (ratatui's init installs a restoring panic hook).
pub async fn run_console(ctx: AwsContext, cfg: ConsoleConfig) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, ctx, cfg).await;
    ratatui::try_restore()?;
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    ctx: AwsContext,
    cfg: ConsoleConfig,
) -> std::io::Result<()> {
    let (tx, mut rx) = unbounded_channel::<Msg>();
    let size = terminal.size()?;
    // The incident task: one incident, held for the session, its actions one at a time.
    let (incident_tx, incident_rx) = unbounded_channel::<WorkerCmd>();
    let incident_task = tokio::spawn(crate::runtime::incident::worker(
        ctx.clone(),
        cfg.session.write_enabled,
        PathBuf::from(&cfg.session.data_dir),
        cfg.policy.clone(),
        cfg.session.identity.clone(),
        incident_rx,
        tx.clone(),
    ));
    let _ = incident_tx.send(WorkerCmd::LoadLatest);
    // The approvals task: lists the store on its timer and carries out the approvals' actions.
    let (approvals_tx, approvals_rx) = unbounded_channel::<Action>();
    let actor = crate::runtime::approvals_task::Actor {
        ctx: ctx.clone(),
        data_dir: PathBuf::from(&cfg.session.data_dir),
        policy: cfg.policy.clone(),
        me: cfg.session.identity.clone(),
        write: cfg.session.write_enabled,
    };
    let approvals_task = tokio::spawn(crate::runtime::approvals_task::worker(actor, approvals_rx, tx.clone()));
    let mut state = State::new(cfg.session, cfg.policy, chrono::Utc::now(), cfg.color);
    update(&mut state, Msg::Resize(size.width, size.height));
    // Cache-first: draw the last inventory at once, marked stale until the live one lands.
    if let Some(inv) = cfg.cache_path.as_deref().and_then(crate::runtime::cache::load) {
        update(&mut state, Msg::CacheLoaded(inv));
    }
    if let Some(j) = cfg.review_journal.as_deref() {
        match last_review(j) {
            Ok(r) => {
                update(&mut state, Msg::LastReviewLoaded(r));
            }
            Err(e) => state.status = Some(crate::app::state::Status { text: e, error: true }),
        }
    }
    let review_journal = cfg.review_journal.clone();
    state.refresh_every = cfg.full_refresh_every;
    if let Some(j) = cfg.alerts_journal.as_deref() {
        match acknowledgements(j) {
            Ok(a) => {
                update(&mut state, Msg::AcksLoaded(a));
            }
            Err(e) => state.status = Some(crate::app::state::Status { text: e, error: true }),
        }
    }
    let alerts_journal = cfg.alerts_journal.clone();
    let mut first_inventory_frame = true;
    let cache_path = cfg.cache_path.clone();

    let input = tokio::spawn(read_input(tx.clone()));
    let ticks = tokio::spawn(tick(tx.clone()));
    let pollers: Vec<_> = match &cfg.poll {
        Some(pc) => {
            let mut v: Vec<_> = ctx
                .regions()
                .iter()
                .map(|rc| tokio::spawn(crate::runtime::poller::run(rc.clone(), pc.clone(), tx.clone())))
                .collect();
            // IAM changes to the key roles: IAM is global and records in us-east-1.
            v.push(tokio::spawn(crate::runtime::poller::run(ctx.global(), pc.for_iam(), tx.clone())));
            v
        }
        None => vec![],
    };
    // The first tick (immediately) triggers the first refresh.
    let mut measured = None;
    let mut pane_measured = 0;
    loop {
        let mut drawn = crate::ui::Drawn::default();
        // One frame is one synchronized update (DEC mode 2026): terminals that know it
        // show whole frames only, never a half-drawn dialog; others ignore it.
        crossterm::queue!(terminal.backend_mut(), crossterm::terminal::BeginSynchronizedUpdate)?;
        terminal.draw(|f| drawn = crate::ui::draw(f, &state))?;
        crossterm::execute!(terminal.backend_mut(), crossterm::terminal::EndSynchronizedUpdate)?;
        // How far the detail pane / step panel can scroll caps J/K (no redraw needed).
        if drawn.pane_max != pane_measured {
            pane_measured = drawn.pane_max;
            update(&mut state, Msg::PaneRows { max: drawn.pane_max });
        }
        // The drawing measured the list's rows: page by them. A change can move the
        // scroll offset, so draw again before waiting.
        let rows = drawn.list;
        if rows.is_some() && rows != measured {
            measured = rows;
            if let Some((view, rows)) = rows {
                update(&mut state, Msg::ListRows { view, rows });
            }
            continue;
        }
        if first_inventory_frame && state.inventory.is_some() {
            first_inventory_frame = false;
            tracing::info!(
                ms = cfg.started.elapsed().as_millis() as u64,
                stale = state.stale,
                "first inventory frame drawn"
            );
        }
        let Some(first) = rx.recv().await else { break };
        let mut actions = update(&mut state, first);
        // Coalesce: apply everything already queued before drawing again.
        drain(&mut rx, &mut state, &mut actions);
        for a in actions {
            if matches!(
                a,
                Action::IncidentStart { .. }
                    | Action::IncidentRun { .. }
                    | Action::IncidentSkip { .. }
                    | Action::IncidentShow { .. }
            ) {
                let _ = incident_tx.send(WorkerCmd::Act(a));
                continue;
            }
            if is_approvals(&a) {
                let _ = approvals_tx.send(a);
                continue;
            }
            let journals = Journals { review: review_journal.clone(), alerts: alerts_journal.clone() };
            spawn_action(a, &ctx, &tx, cache_path.clone(), journals);
        }
        if state.quit {
            break;
        }
    }
    input.abort();
    ticks.abort();
    incident_task.abort();
    approvals_task.abort();
    for p in pollers {
        p.abort();
    }
    Ok(())
}

/// Actions the approvals task carries out.
fn is_approvals(a: &Action) -> bool {
    matches!(
        a,
        Action::LoadApprovals
            | Action::ReadApprovalTarget { .. }
            | Action::ApprovalPropose { .. }
            | Action::ApprovalApprove { .. }
            | Action::ApprovalReject { .. }
            | Action::ApprovalWithdraw { .. }
    )
}

fn drain(rx: &mut UnboundedReceiver<Msg>, state: &mut State, actions: &mut Vec<Action>) {
    while let Ok(msg) = rx.try_recv() {
        actions.extend(update(state, msg));
    }
}

async fn read_input(tx: UnboundedSender<Msg>) {
    let mut events = EventStream::new();
    while let Some(ev) = events.next().await {
        let msg = match ev {
            Ok(Event::Key(k)) => Msg::Key(k),
            Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
            Ok(_) => continue,
            Err(e) => {
                tracing::error!("terminal input failed: {e}");
                break;
            }
        };
        if tx.send(msg).is_err() {
            break;
        }
    }
}

async fn tick(tx: UnboundedSender<Msg>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        if tx.send(Msg::Tick(chrono::Utc::now())).is_err() {
            break;
        }
    }
}

/// Where local records go.
struct Journals {
    review: Option<PathBuf>,
    alerts: Option<PathBuf>,
}

fn spawn_action(
    action: Action,
    ctx: &AwsContext,
    tx: &UnboundedSender<Msg>,
    cache_path: Option<PathBuf>,
    journals: Journals,
) {
    let review_journal = journals.review;
    let ctx = ctx.clone();
    let tx = tx.clone();
    match action {
        Action::RefreshInventory => {
            tokio::spawn(async move {
                let started = Instant::now();
                let inv = crate::aws::fetch_inventory(&ctx).await;
                tracing::info!(
                    keys = inv.keys().count(),
                    secrets = inv.secrets().count(),
                    ms = started.elapsed().as_millis() as u64,
                    "inventory refreshed"
                );
                // An incomplete listing (a Region or service not listed) never replaces the
                // last complete one in the cache.
                if let Some(p) = cache_path.filter(|_| inv.is_complete()) {
                    if let Err(e) = crate::runtime::cache::save(&p, &inv) {
                        tracing::warn!("could not write the inventory cache {}: {e}", p.display());
                    }
                }
                let _ = tx.send(Msg::InventoryLoaded(inv));
            });
        }
        Action::FetchKeyPolicy { region, key_id, arn } => {
            tokio::spawn(async move {
                let Some(rc) = ctx.regions().iter().find(|r| r.region == region) else { return };
                let summary = match crate::aws::kms::key_policy(rc, &key_id).await {
                    Ok(doc) => Fetched::Ok(crate::domain::keypolicy::summarise(&doc)),
                    Err(e) if e.kind == crate::aws::AwsErrorKind::AccessDenied => Fetched::Denied,
                    Err(e) => Fetched::Failed(e.to_string()),
                };
                let _ = tx.send(Msg::KeyPolicyLoaded { arn, summary });
            });
        }
        Action::RereadKeys { region, key_ids } => {
            tokio::spawn(async move {
                let Some(rc) = ctx.regions().iter().find(|r| r.region == region) else { return };
                let (mut items, mut gone, mut problems) = (Vec::new(), Vec::new(), Vec::new());
                for id in key_ids {
                    match crate::aws::kms::read_key(rc, &id).await {
                        Ok(k) => items.push(k),
                        Err(e) if e.kind == crate::aws::AwsErrorKind::NotFound => gone.push(id),
                        Err(e) => problems.push(e.to_string()),
                    }
                }
                tracing::info!(region = %region, reread = items.len(), gone = gone.len(), "keys re-read after feed changes");
                let _ = tx.send(Msg::KeysReread { region, items, gone, problems });
            });
        }
        Action::RereadSecrets { region, secret_ids } => {
            tokio::spawn(async move {
                let Some(rc) = ctx.regions().iter().find(|r| r.region == region) else { return };
                let (mut items, mut gone, mut problems) = (Vec::new(), Vec::new(), Vec::new());
                for id in secret_ids {
                    match crate::aws::secrets::read_secret(rc, &id).await {
                        Ok(s) => items.push(s),
                        Err(e) if e.kind == crate::aws::AwsErrorKind::NotFound => gone.push(id),
                        Err(e) => problems.push(e.to_string()),
                    }
                }
                let _ = tx.send(Msg::SecretsReread { region, items, gone, problems });
            });
        }
        Action::SaveAck { alert_id, actor, summary } => {
            let path = journals.alerts;
            tokio::task::spawn_blocking(move || {
                let body = serde_json::json!({ "alert_id": alert_id, "alert": summary });
                let result = append_one(path, chrono::Utc::now(), ACK_KIND, &actor, body).map(|()| (alert_id, actor));
                let _ = tx.send(Msg::AckSaved(result));
            });
        }
        Action::IncidentStart { .. }
        | Action::IncidentRun { .. }
        | Action::IncidentSkip { .. }
        | Action::IncidentShow { .. } => {
            tracing::error!("incident actions go to the incident task");
        }
        Action::LoadApprovals
        | Action::ReadApprovalTarget { .. }
        | Action::ApprovalPropose { .. }
        | Action::ApprovalApprove { .. }
        | Action::ApprovalReject { .. }
        | Action::ApprovalWithdraw { .. } => tracing::error!("approvals actions go to the approvals task"),
        Action::SaveReview(rec) => {
            // File IO with fsync: off the async workers.
            tokio::task::spawn_blocking(move || {
                let result = serde_json::to_value(&*rec)
                    .map_err(|e| e.to_string())
                    .and_then(|body| append_one(review_journal, rec.at, REVIEW_KIND, &rec.reviewer, body))
                    .map(|()| *rec);
                let _ = tx.send(Msg::ReviewSaved(result));
            });
        }
    }
}
