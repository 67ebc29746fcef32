//! `keydeck alerts`: the policy's detection rules over a window of CloudTrail events;
//! exits 1 when an alert at or above `--fail-on` fired. The new-reader rule's baseline is
//! learned from a period before the window (`baseline_from`), never from the window
//! judged.

use chrono::{DateTime, Duration, Utc};

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
    let until = Utc::now();
    let since = until - args.since;
    let learn_from = baseline_from(since, until);
    // One read: LookupEvents pages newest first, so a page limit cuts the baseline, not
    // the window judged.
    let (events, skipped) = read_trail(&ctx, &env.policy, &cfg, &mut pacers, &mut feed, learn_from, until).await?;
    let judged = events.iter().filter(|e| e.event_time >= since).count();
    let mut detector = Detector::for_policy(&env.policy);
    let alerts = detector.judge_window(&events, since, &keys);
    match args.format {
        TableFormat::Json => {
            let out = serde_json::json!({
                "since": since,
                "until": until,
                "baseline_from": learn_from,
                "baseline_events": events.len() - judged,
                "events": judged,
                "skipped_records": skipped,
                "alerts": alerts,
            });
            println!("{}", json(&out)?);
        }
        TableFormat::Table => print!("{}", report::alerts_table(&alerts, judged)),
    }
    Ok(if alerts.iter().any(|a| a.severity.at_least(threshold)) { exit::CHECK_FAILED } else { exit::OK })
}

/// Shortest baseline before the judged window.
pub const MIN_BASELINE_HOURS: i64 = 24;
/// Longest baseline before the judged window.
pub const MAX_BASELINE_HOURS: i64 = 7 * 24;

/// Where the baseline starts for a window judged from `since` to `until`: a period as
/// long as the window, at least a day and at most a week, just before `since`.
pub fn baseline_from(since: DateTime<Utc>, until: DateTime<Utc>) -> DateTime<Utc> {
    let len = (until - since).clamp(Duration::hours(MIN_BASELINE_HOURS), Duration::hours(MAX_BASELINE_HOURS));
    since.checked_sub_signed(len).unwrap_or(since)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).single().expect("time") + Duration::hours(h)
    }

    #[test]
    fn the_baseline_is_before_the_window_judged() {
        // --since 24h: the 24 hours before.
        assert_eq!(baseline_from(at(-24), at(0)), at(-48));
        // --since 2h: at least a day before.
        assert_eq!(baseline_from(at(-2), at(0)), at(-26));
        // --since 30d: at most a week before.
        assert_eq!(baseline_from(at(-720), at(0)), at(-720 - 168));
        // Never inside the window, whatever the clock says.
        for (since, until) in [(at(0), at(0)), (at(0), at(-5)), (at(-3), at(0))] {
            assert!(baseline_from(since, until) < since);
        }
        assert_eq!(baseline_from(DateTime::<Utc>::MIN_UTC, at(0)), DateTime::<Utc>::MIN_UTC);
    }
}
