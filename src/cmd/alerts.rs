//! `keydeck alerts`: the policy's detection rules over a window of CloudTrail events;
//! exits 1 when an alert at or above `--fail-on` fired.

use super::env::{connect_checked, json, Env, Failure};
use super::feed::{pacers, read_trail};
use crate::aws;
use crate::cli::{exit, AlertsArgs, TableFormat};
use crate::domain::detect::{Detector, KeyIndex};
use crate::domain::feed::Feed;
use crate::domain::rules::{Severity, SeverityParseError};
use crate::report;
use crate::runtime::poller::PollConfig;

pub async fn run(env: &Env, args: &AlertsArgs) -> Result<u8, Failure> {
    let threshold: Severity =
        args.fail_on.parse().map_err(|e: SeverityParseError| Failure::new(exit::USAGE, format!("--fail-on: {e}")))?;
    let (ctx, _identity) = connect_checked(&env.chain_options()).await?;
    let inv = aws::fetch_inventory(&ctx).await;
    for p in inv.problems() {
        tracing::warn!("inventory: {p}");
    }
    let keys = KeyIndex::from_inventory(&inv, &env.policy);
    let cfg = PollConfig { max_pages: 200, ..PollConfig::default() };
    let mut pacers = pacers(&ctx, &cfg);
    let mut feed = Feed::new(1_000_000);
    let until = chrono::Utc::now();
    let (events, skipped) =
        read_trail(&ctx, &env.policy, &cfg, &mut pacers, &mut feed, until - args.since, until).await?;
    let mut detector = Detector::for_policy(&env.policy);
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
        TableFormat::Table => print!("{}", report::alerts_table(&alerts, events.len())),
    }
    Ok(if alerts.iter().any(|a| a.severity.at_least(threshold)) { exit::CHECK_FAILED } else { exit::OK })
}
