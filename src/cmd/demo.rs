//! `keydeck demo`: start a seeded sandbox and open the console against it as one of its
//! operators; the sandbox stops when the console closes.

use super::env::{Env, Failure};
use crate::cli::DemoArgs;

pub async fn run(env: &Env, args: &DemoArgs) -> Result<u8, Failure> {
    let sb = super::sandbox::start(env, &args.sandbox).await?;
    let result = match sb.info.connect_options(&args.operator, &env.global.regions) {
        // The sandbox answers fast and delivers in seconds: poll often in the demo.
        Ok(opts) => super::console::run(env, opts, 3.0).await,
        Err(e) => Err(e.into()),
    };
    sb.stop().await;
    result
}
