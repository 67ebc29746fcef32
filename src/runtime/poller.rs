//! The CloudTrail poller: one task per region that pages LookupEvents over an overlapping
//! window, paced under CloudTrail's 2 requests/s per region, backing off on throttling,
//! and sends raw records to the update loop (which deduplicates by EventId).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::UnboundedSender;

use crate::app::msg::PollResult;
use crate::aws::cloudtrail::{lookup_page, Query};
use crate::aws::{AwsError, AwsErrorKind, RegionConfig};
use crate::domain::trail::{IAM_SOURCE, KMS_SOURCE, SECRETS_SOURCE};

/// How the feed polls.
#[derive(Debug, Clone)]
pub struct PollConfig {
    /// Time between polls.
    pub interval: Duration,
    /// How far back each poll looks again, for events CloudTrail delivers late.
    pub overlap: chrono::Duration,
    /// How far back the first poll reads.
    pub backfill: chrono::Duration,
    /// Minimum time between two LookupEvents calls in one region (AWS allows 2/s).
    pub min_gap: Duration,
    /// At most this many pages per source per poll (bounds the cost of a busy window).
    pub max_pages: usize,
    /// How far past the local clock each window reaches (clock skew with AWS).
    pub clock_skew: chrono::Duration,
    /// The event sources to read (one LookupEvents query each).
    pub sources: Vec<&'static str>,
}

impl PollConfig {
    /// The same polling for IAM's global events (read in us-east-1).
    pub fn for_iam(&self) -> Self {
        Self { sources: vec![IAM_SOURCE], ..self.clone() }
    }
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            overlap: chrono::Duration::minutes(15),
            backfill: chrono::Duration::hours(2),
            min_gap: Duration::from_millis(600),
            max_pages: 20,
            clock_skew: chrono::Duration::minutes(2),
            sources: vec![KMS_SOURCE, SECRETS_SOURCE],
        }
    }
}

/// Paces calls in one region and backs off on throttling.
pub struct Pacer {
    min_gap: Duration,
    last: Option<tokio::time::Instant>,
}

impl Pacer {
    pub fn new(min_gap: Duration) -> Self {
        Self { min_gap, last: None }
    }

    async fn wait_turn(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.min_gap).await;
        }
        self.last = Some(tokio::time::Instant::now());
    }
}

/// One poll of one region: both event sources over [from, until], every page (up to the
/// limit). Throttling is retried with exponential backoff (up to 6 times per page).
pub async fn poll_once(
    rc: &RegionConfig,
    cfg: &PollConfig,
    pacer: &mut Pacer,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<PollResult, AwsError> {
    let mut out =
        PollResult { region: rc.region.clone(), records: Vec::new(), calls: 0, throttled: 0, until, finished: until };
    for source in &cfg.sources {
        let q = Query { event_source: Some((*source).to_owned()), start: from, end: until };
        let mut token = None;
        for _ in 0..cfg.max_pages {
            let mut backoff = Duration::from_millis(500);
            let mut tries = 0;
            let page = loop {
                pacer.wait_turn().await;
                out.calls += 1;
                match lookup_page(rc, &q, token.clone()).await {
                    Ok(p) => break p,
                    Err(e) if e.kind == AwsErrorKind::Throttled && tries < 6 => {
                        tries += 1;
                        out.throttled += 1;
                        tracing::debug!(region = %rc.region, "LookupEvents throttled; backing off {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(16));
                    }
                    Err(e) => return Err(e),
                }
            };
            out.records.extend(page.records);
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
    }
    out.finished = Utc::now();
    Ok(out)
}

/// Poll one region forever, sending each result (or a problem) to the update loop.
pub async fn run(rc: RegionConfig, cfg: PollConfig, tx: UnboundedSender<crate::app::Msg>) {
    let mut pacer = Pacer::new(cfg.min_gap);
    let mut since = Utc::now() - cfg.backfill;
    loop {
        // A little into the future: a machine clock behind AWS's must not hide new events.
        let until = Utc::now() + cfg.clock_skew;
        let from = since.min(until - cfg.overlap);
        let msg = match poll_once(&rc, &cfg, &mut pacer, from, until).await {
            Ok(r) => {
                since = r.until;
                crate::app::Msg::TrailPolled(r)
            }
            Err(e) => crate::app::Msg::FeedProblem(e.to_string()),
        };
        if tx.send(msg).is_err() {
            return;
        }
        tokio::time::sleep(cfg.interval).await;
    }
}
