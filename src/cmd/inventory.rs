//! `keydeck inventory`: every key and secret judged against the policy, as a table or
//! JSON; `--check` exits 1 when anything needs attention (for cron and CI).

use super::env::{connect_checked, json, Env, Failure};
use crate::aws;
use crate::cli::{exit, InventoryArgs, TableFormat};
use crate::domain::assessment::assess;
use crate::domain::inventory::KeyManager;
use crate::report;

pub async fn run(env: &Env, args: &InventoryArgs) -> Result<u8, Failure> {
    let (ctx, identity) = connect_checked(&env.chain_options()).await?;
    let mut inv = aws::fetch_inventory(&ctx).await;
    if !args.aws_managed {
        for r in &mut inv.regions {
            r.keys.retain(|k| k.manager != KeyManager::Aws);
        }
    }
    let regions = ctx.region_names();
    let a = assess(&inv, &env.policy, chrono::Utc::now(), &regions);
    let problems: Vec<String> = inv.problems().cloned().collect();
    match args.format {
        TableFormat::Table => {
            print!("{}", report::table(&a, &problems));
            if args.check && a.fails_check() {
                print!("{}", report::check_failures(&a));
            }
        }
        TableFormat::Json => {
            let out = report::InventoryReport {
                generated_at: a.at.unwrap_or_else(chrono::Utc::now),
                identity: &identity,
                regions: &regions,
                policy: &env.policy_name,
                summary: report::Summary::of(&a),
                items: &a.items,
                drift: report::drift_out(&a),
                external: &a.external,
                problems,
                check_failed: a.fails_check(),
                check_failures: a.check_failures(),
                unlisted: report::unlisted_out(&a),
            };
            println!("{}", json(&out)?);
        }
    }
    Ok(if args.check && a.fails_check() { exit::CHECK_FAILED } else { exit::OK })
}
