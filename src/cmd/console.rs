//! The console (no subcommand): connect, check who we are, then hand the terminal to
//! the runtime until the operator quits.

use std::sync::Arc;

use super::env::{connect_checked, Env, Failure};
use crate::app::Session;
use crate::aws::ConnectOptions;
use crate::cli::exit;
use crate::incident::records::{alerts_journal_path, review_journal_path};
use crate::runtime::console::{run_console, ConsoleConfig};
use crate::runtime::poller::PollConfig;

/// Open the console with these connection options, polling CloudTrail every
/// `default_poll` seconds unless `--poll` says otherwise.
pub async fn run(env: &Env, mut opts: ConnectOptions, default_poll: f64) -> Result<u8, Failure> {
    opts.approvals_region = opts.approvals_region.or_else(|| env.policy.incident.region.clone());
    let (ctx, identity) = connect_checked(&opts).await?;
    let session = Session {
        identity,
        regions: ctx.region_names(),
        profile: opts.profile.clone(),
        endpoint: opts.endpoint_url.clone(),
        write_enabled: env.global.allow_write,
        policy_name: env.policy_name.clone(),
        data_dir: env.data_dir.display().to_string(),
        log_file: env.data_dir.join("keydeck.log").display().to_string(),
    };
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let account = session.identity.account.clone();
    let cache_path =
        crate::runtime::cache::path(&env.data_dir, opts.endpoint_url.as_deref(), &account, &session.regions);
    let cfg = ConsoleConfig {
        session,
        policy: Arc::new(env.policy.clone()),
        color,
        cache_path: Some(cache_path),
        started: env.started,
        review_journal: Some(review_journal_path(&env.data_dir, &account)),
        alerts_journal: Some(alerts_journal_path(&env.data_dir, &account)),
        poll: Some(PollConfig { interval: env.poll_interval(default_poll), ..PollConfig::default() }),
        full_refresh_every: std::time::Duration::from_secs(15 * 60),
    };
    run_console(ctx, cfg).await.map_err(|e| Failure::new(exit::INTERNAL, format!("terminal error: {e}")))?;
    Ok(exit::OK)
}
