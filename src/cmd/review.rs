//! `keydeck review`: the daily review — what is not OK, why, the action the policy
//! prescribes, and what changed since the last review saved in the journal.

use super::env::{connect_checked, json, Env, Failure};
use crate::aws;
use crate::cli::{exit, ReviewArgs, ReviewFormat};
use crate::domain::assessment::assess;
use crate::domain::review::changes_since;
use crate::incident::records::{last_review, review_journal_path};
use crate::report;

pub async fn run(env: &Env, args: &ReviewArgs) -> Result<u8, Failure> {
    let (ctx, identity) = connect_checked(&env.chain_options()).await?;
    let inv = aws::fetch_inventory(&ctx).await;
    let regions = ctx.region_names();
    let a = assess(&inv, &env.policy, chrono::Utc::now(), &regions);
    let problems: Vec<String> = inv.problems().cloned().collect();
    let journal = review_journal_path(&env.data_dir, &identity.account);
    let last = last_review(&journal).map_err(|e| Failure::new(exit::CONFIG, e))?;
    let changes = last.as_ref().map(|r| changes_since(r, &a)).unwrap_or_default();
    match args.format {
        ReviewFormat::Markdown => {
            let mut change_text: Vec<String> = changes.iter().map(|c| c.describe()).collect();
            if let Some(r) = &last {
                change_text.insert(0, format!("last review {} by {}", r.at.format("%Y-%m-%d %H:%M UTC"), r.reviewer));
            }
            print!("{}", report::review_markdown(&a, &identity, &regions, &env.policy_name, &problems, &change_text))
        }
        ReviewFormat::Json => {
            let out =
                report::review_json(&a, &identity, &regions, &env.policy_name, &problems, last.as_ref(), &changes);
            println!("{}", json(&out)?);
        }
    }
    Ok(exit::OK)
}
