//! The runtime: terminal setup and restore, the message channel, input and tick tasks,
//! AWS tasks for actions, and coalesced drawing (one frame per burst of messages).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::msg::{Action, Msg};
use super::state::{Session, State};
use super::update::update;
use crate::aws::AwsContext;
use crate::domain::inventory::Fetched;
use crate::domain::policy::Policy;
use crate::domain::review::ReviewRecord;

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
}

/// The last review saved in a review journal (for "what changed since").
pub fn last_review(path: &std::path::Path) -> Result<Option<ReviewRecord>, String> {
    let entries = crate::incident::journal::read(path).map_err(|e| e.to_string())?;
    Ok(entries
        .iter()
        .rev()
        .filter(|e| e.kind == REVIEW_KIND)
        .find_map(|e| serde_json::from_value::<ReviewRecord>(e.body.clone()).ok()))
}

/// The journal entry kind of a saved review.
pub const REVIEW_KIND: &str = "review";

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
    let mut state = State::new(cfg.session, cfg.policy, chrono::Utc::now(), cfg.color);
    update(&mut state, Msg::Resize(size.width, size.height));
    // Cache-first: draw the last inventory at once, marked stale until the live one lands.
    if let Some(inv) = cfg.cache_path.as_deref().and_then(super::cache::load) {
        update(&mut state, Msg::CacheLoaded(inv));
    }
    if let Some(j) = cfg.review_journal.as_deref() {
        match last_review(j) {
            Ok(r) => {
                update(&mut state, Msg::LastReviewLoaded(r));
            }
            Err(e) => state.status = Some(super::state::Status { text: e, error: true }),
        }
    }
    let review_journal = cfg.review_journal.clone();
    let mut first_inventory_frame = true;
    let cache_path = cfg.cache_path.clone();

    let input = tokio::spawn(read_input(tx.clone()));
    let ticks = tokio::spawn(tick(tx.clone()));
    // The first tick (immediately) triggers the first refresh.
    loop {
        terminal.draw(|f| crate::ui::draw(f, &state))?;
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
            spawn_action(a, &ctx, &tx, cache_path.clone(), review_journal.clone());
        }
        if state.quit {
            break;
        }
    }
    input.abort();
    ticks.abort();
    Ok(())
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

fn spawn_action(
    action: Action,
    ctx: &AwsContext,
    tx: &UnboundedSender<Msg>,
    cache_path: Option<PathBuf>,
    review_journal: Option<PathBuf>,
) {
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
                if let Some(p) = cache_path {
                    if let Err(e) = super::cache::save(&p, &inv) {
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
        Action::SaveReview(rec) => {
            // File IO with fsync: off the async workers.
            tokio::task::spawn_blocking(move || {
                let result = match review_journal {
                    None => Err("no journal configured".to_owned()),
                    Some(path) => serde_json::to_value(&*rec).map_err(|e| e.to_string()).and_then(|body| {
                        let mut j = crate::incident::journal::Journal::open(&path).map_err(|e| e.to_string())?;
                        j.append(rec.at, REVIEW_KIND, &rec.reviewer, body).map_err(|e| e.to_string())?;
                        Ok(*rec)
                    }),
                };
                let _ = tx.send(Msg::ReviewSaved(result));
            });
        }
    }
}
