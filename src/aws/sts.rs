//! STS: who am I?

use crate::domain::identity::CallerIdentity;

use super::context::AwsContext;
use super::error::AwsError;

/// `sts:GetCallerIdentity` in the home region.
pub async fn caller_identity(ctx: &AwsContext) -> Result<CallerIdentity, AwsError> {
    let home = ctx.home();
    let client = aws_sdk_sts::Client::new(&home.config);
    let out = client
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("sts:GetCallerIdentity", &home.region, None, e))?;
    Ok(CallerIdentity {
        arn: out.arn().unwrap_or_default().to_owned(),
        account: out.account().unwrap_or_default().to_owned(),
        user_id: out.user_id().unwrap_or_default().to_owned(),
    })
}
