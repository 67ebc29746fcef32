//! The whole inventory: keys and secrets of every selected region, read concurrently.

use super::context::AwsContext;
use super::{kms, secrets};

/// Fetch the inventory of every selected region concurrently. A failure in one region or
/// one service is recorded as a problem of that region; the rest still loads.
pub async fn fetch_inventory(ctx: &AwsContext) -> crate::domain::inventory::Inventory {
    use crate::domain::inventory::{Inventory, RegionInventory};
    let per_region = ctx.regions().iter().map(|rc| async move {
        let (keys, secrets) = tokio::join!(kms::list_keys(rc), secrets::list_secrets(rc));
        let mut ri = RegionInventory { region: rc.region.clone(), ..Default::default() };
        match keys {
            Ok((keys, problems)) => {
                ri.keys = keys;
                for e in problems {
                    ri.problems.push(e.to_string());
                    ri.unlisted.push(e.listing_failure());
                }
            }
            Err(e) => {
                ri.problems.push(e.to_string());
                ri.unlisted.push(e.listing_failure());
            }
        }
        match secrets {
            // keydeck's approval requests are not inventory (see SecretItem::is_approval_request).
            Ok(s) => ri.secrets = s.into_iter().filter(|s| !s.is_approval_request()).collect(),
            Err(e) => {
                ri.problems.push(e.to_string());
                ri.unlisted.push(e.listing_failure());
            }
        }
        ri
    });
    let regions = futures::future::join_all(per_region).await;
    Inventory { regions, fetched_at: Some(chrono::Utc::now()) }
}
