//! `keydeck review`: the daily review — what is not OK, why, the action the policy
//! prescribes, and what changed since the last review saved in the journal.

use super::env::{connect_checked, json, Env, Failure};
use crate::aws;
use crate::cli::{exit, ReviewArgs, ReviewFormat};
use crate::domain::assessment::assess;
use crate::domain::review::{changes_since, OpenRequest};
use crate::incident::records::{last_review, review_journal_path};
use crate::report;
use crate::runtime::approvals as flow;

pub async fn run(env: &Env, args: &ReviewArgs) -> Result<u8, Failure> {
    let (ctx, identity) = connect_checked(&env.chain_options()).await?;
    let inv = aws::fetch_inventory(&ctx).await;
    let regions = ctx.region_names();
    let a = assess(&inv, &env.policy, chrono::Utc::now(), &regions);
    let mut problems: Vec<String> = inv.problems().cloned().collect();
    // Open dual-approval requests (issue 11): a failure to list them is a problem of the
    // review, never a reason not to give it.
    let requests = match flow::list(&ctx, &env.data_dir, &env.policy.approvals, &identity).await {
        Ok(l) => open_requests(&a, &l),
        Err(e) => {
            problems.push(format!("approval requests could not be listed: {e}"));
            vec![]
        }
    };
    let journal = review_journal_path(&env.data_dir, &identity.account);
    let last = last_review(&journal).map_err(|e| Failure::new(exit::CONFIG, e))?;
    let changes = last.as_ref().map(|r| changes_since(r, &a)).unwrap_or_default();
    let review = report::Review {
        assessment: &a,
        identity: &identity,
        regions: &regions,
        policy: &env.policy_name,
        problems: &problems,
        requests: &requests,
    };
    match args.format {
        ReviewFormat::Markdown => {
            let mut change_text: Vec<String> = changes.iter().map(|c| c.describe()).collect();
            if let Some(r) = &last {
                change_text.insert(0, format!("last review {} by {}", r.at.format("%Y-%m-%d %H:%M UTC"), r.reviewer));
            }
            print!("{}", report::review_markdown(&review, &change_text))
        }
        ReviewFormat::Json => println!("{}", json(&report::review_json(&review, last.as_ref(), &changes))?),
    }
    Ok(exit::OK)
}

/// The listing's open requests (waiting for the reviewer first, then the reviewer's own,
/// then the rest), each named as the assessment names its key.
fn open_requests(a: &crate::domain::assessment::Assessment, l: &flow::Listing) -> Vec<OpenRequest> {
    let tagged = l.waiting_for_me.iter().map(|v| (v, true)).chain(l.mine.iter().chain(&l.open).map(|v| (v, false)));
    tagged
        .map(|(v, for_reviewer)| OpenRequest {
            id: v.id.clone(),
            operation: v.request.operation.name().to_owned(),
            target: OpenRequest::target_name(a, &v.request.target_arn),
            target_arn: v.request.target_arn.clone(),
            proposer: v.proposer.clone(),
            reason: v.request.reason.clone(),
            expires: v.request.expires,
            for_reviewer,
        })
        .collect()
}
