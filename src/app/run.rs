//! The runtime: terminal setup and restore, the message channel, input and tick tasks,
//! AWS tasks for actions, and coalesced drawing (one frame per burst of messages).

use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::msg::{Action, Msg};
use super::state::{Session, State};
use super::update::update;
use crate::aws::AwsContext;

/// Open the console and run it until the operator quits. The terminal is restored on
/// every exit path, panics included (ratatui's init installs a restoring panic hook).
pub async fn run_console(ctx: AwsContext, session: Session, color: bool) -> std::io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, ctx, session, color).await;
    ratatui::try_restore()?;
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    ctx: AwsContext,
    session: Session,
    color: bool,
) -> std::io::Result<()> {
    let (tx, mut rx) = unbounded_channel::<Msg>();
    let size = terminal.size()?;
    let mut state = State::new(session, chrono::Utc::now(), color);
    update(&mut state, Msg::Resize(size.width, size.height));

    let input = tokio::spawn(read_input(tx.clone()));
    let ticks = tokio::spawn(tick(tx.clone()));
    // The first tick (immediately) triggers the first refresh.
    loop {
        terminal.draw(|f| crate::ui::draw(f, &state))?;
        let Some(first) = rx.recv().await else { break };
        let mut actions = update(&mut state, first);
        // Coalesce: apply everything already queued before drawing again.
        drain(&mut rx, &mut state, &mut actions);
        for a in actions {
            spawn_action(a, &ctx, &tx);
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

fn spawn_action(action: Action, ctx: &AwsContext, tx: &UnboundedSender<Msg>) {
    let ctx = ctx.clone();
    let tx = tx.clone();
    match action {
        Action::RefreshInventory => {
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let inv = crate::aws::fetch_inventory(&ctx).await;
                tracing::info!(
                    keys = inv.keys().count(),
                    secrets = inv.secrets().count(),
                    ms = started.elapsed().as_millis() as u64,
                    "inventory refreshed"
                );
                let _ = tx.send(Msg::InventoryLoaded(inv));
            });
        }
    }
}
