//! Pure, synchronous domain logic: no IO, no clock reads, no SDK types.
//! Everything here is testable with plain values.

pub mod approval;
pub mod approval_event;
pub mod assessment;
pub mod detect;
pub mod feed;
pub mod filter;
pub mod identity;
pub mod inventory;
pub mod keypolicy;
pub mod policy;
pub mod reference;
pub mod region;
pub mod review;
pub mod rules;
pub mod runbook;
pub mod scope;
pub mod status;
pub mod text;
pub mod trail;
