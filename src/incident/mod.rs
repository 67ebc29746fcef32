//! Durable, tamper-evident records: the append-only, hash-chained journal that incident
//! steps, approvals and reviews are written to.

pub mod journal;
pub mod records;
