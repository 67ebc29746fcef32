//! `keydeck feed`: CloudTrail events for keys and secrets (KMS, Secrets Manager, and IAM
//! changes to the policy's key roles), oldest first; `--follow` keeps polling.

use super::env::{connect_checked, Env, Failure};
use crate::aws::{self, AwsContext};
use crate::cli::{exit, FeedArgs, TableFormat};
use crate::domain::detect::KeyIndex;
use crate::domain::feed::{parse_records, Feed};
use crate::domain::policy::Policy;
use crate::domain::trail::TrailEvent;
use crate::report;
use crate::runtime::poller::{poll_once, Pacer, PollConfig};

pub async fn run(env: &Env, args: &FeedArgs) -> Result<u8, Failure> {
    let (ctx, identity) = connect_checked(&env.chain_options()).await?;
    // Key names for display: aliases of every region (no per-key calls).
    let mut keys = KeyIndex::new();
    for rc in ctx.regions() {
        if let Ok(list) = aws::kms::aliases(rc).await {
            keys.insert_aliases(&rc.region, &identity.account, list);
        }
    }
    let cfg = PollConfig { max_pages: 200, interval: env.poll_interval(10.0), ..PollConfig::default() };
    let mut pacers = pacers(&ctx, &cfg);
    let mut feed = Feed::new(100_000);
    let mut from = chrono::Utc::now() - args.since;
    loop {
        let until = chrono::Utc::now();
        match read_trail(&ctx, &env.policy, &cfg, &mut pacers, &mut feed, from, until).await {
            Ok((new, skipped)) => {
                print_events(&new, &keys, args.format)?;
                if skipped > 0 {
                    eprintln!("keydeck: skipped {skipped} unreadable CloudTrail record(s); see the log");
                }
            }
            Err(e) if args.follow => eprintln!("keydeck: {e} (retrying)"),
            Err(e) => return Err(e.into()),
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

/// One pacer per selected region, and one for IAM's global events.
pub(super) fn pacers(ctx: &AwsContext, cfg: &PollConfig) -> Vec<Pacer> {
    (0..=ctx.regions().len()).map(|_| Pacer::new(cfg.min_gap)).collect()
}

/// Read CloudTrail events of every selected region over [from, until], deduplicated and
/// in event-time order; unreadable records are counted, not fatal.
pub(super) async fn read_trail(
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
        let r = r?;
        let (events, unreadable) = parse_records(r.records.iter().map(|(_, raw)| raw.as_str()), policy);
        for e in &unreadable {
            tracing::warn!("skipped an unreadable CloudTrail record: {e}");
        }
        skipped += unreadable.len();
        parsed.extend(events);
    }
    Ok((feed.insert(parsed), skipped))
}

fn print_events(events: &[TrailEvent], keys: &KeyIndex, format: TableFormat) -> Result<(), Failure> {
    for e in events {
        let subject = keys.subject(e);
        match format {
            TableFormat::Json => println!(
                "{}",
                report::event_json(e, &subject).map_err(|e| Failure::new(exit::INTERNAL, e.to_string()))?
            ),
            TableFormat::Table => println!("{}", report::event_line(e, &subject)),
        }
    }
    Ok(())
}
