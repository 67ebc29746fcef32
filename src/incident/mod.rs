//! Durable, tamper-evident records: the append-only, hash-chained journal that incident
//! steps, approvals and reviews are written to; the per-incident log built on it; and the
//! review and acknowledgement journals' readers.

pub mod journal;
pub mod log;
pub mod records;
