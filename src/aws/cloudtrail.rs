//! CloudTrail LookupEvents: the raw records of one region, for the feed.

use chrono::{DateTime, Utc};

use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};

use super::context::RegionConfig;
use super::error::AwsError;

/// One page of LookupEvents: (EventId, CloudTrailEvent JSON) pairs, newest first.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<(String, String)>,
    pub next_token: Option<String>,
}

/// What to look up.
#[derive(Debug, Clone)]
pub struct Query {
    pub event_source: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

fn smithy(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

/// One LookupEvents call (MaxResults 50, the most AWS allows). The SDK does not retry it:
/// the caller paces LookupEvents and backs off on throttling itself, so it knows.
pub async fn lookup_page(rc: &RegionConfig, q: &Query, next_token: Option<String>) -> Result<Page, AwsError> {
    let conf = aws_sdk_cloudtrail::config::Builder::from(&rc.config)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_cloudtrail::Client::from_conf(conf);
    let mut req = client.lookup_events().start_time(smithy(q.start)).end_time(smithy(q.end)).max_results(50);
    if let Some(src) = &q.event_source {
        req = req.lookup_attributes(
            LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::EventSource)
                .attribute_value(src)
                .build()
                .map_err(|e| AwsError {
                    call: "cloudtrail:LookupEvents",
                    region: rc.region.clone(),
                    resource: None,
                    kind: super::error::AwsErrorKind::Client,
                    code: None,
                    message: e.to_string(),
                })?,
        );
    }
    if let Some(t) = next_token {
        req = req.next_token(t);
    }
    let out = req.send().await.map_err(|e| AwsError::from_sdk("cloudtrail:LookupEvents", &rc.region, None, e))?;
    Ok(Page {
        records: out
            .events()
            .iter()
            .filter_map(|e| Some((e.event_id()?.to_owned(), e.cloud_trail_event()?.to_owned())))
            .collect(),
        next_token: out.next_token().map(str::to_owned),
    })
}
