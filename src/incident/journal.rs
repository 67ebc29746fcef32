//! An append-only, hash-chained JSON Lines journal.
//!
//! Each line is one [`Entry`]; its `hash` is SHA-256 over the previous entry's hash and
//! this entry's canonical JSON (seq, at, kind, actor, body), so editing, removing or
//! reordering any line breaks the chain from there on. The file is created 0600, opened
//! for append only, and every append is fsynced before it returns: a step counts as done
//! only once it is on disk.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// What the entry records: "review", "incident.step", "approval.proposed", ...
    pub kind: String,
    /// The STS ARN of the principal who did it.
    pub actor: String,
    pub body: serde_json::Value,
    pub prev: String,
    pub hash: String,
}

#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    at: &'a DateTime<Utc>,
    kind: &'a str,
    actor: &'a str,
    body: &'a serde_json::Value,
}

fn digest(prev: &str, seq: u64, at: &DateTime<Utc>, kind: &str, actor: &str, body: &serde_json::Value) -> String {
    let canonical = serde_json::to_string(&Hashed { seq, at, kind, actor, body }).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a journal could not be used.
#[derive(Debug)]
pub enum JournalError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The chain is broken at this line (1-based): the file was edited or truncated.
    Tampered {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, error } => write!(f, "journal {}: {error}", path.display()),
            Self::Tampered { path, line, reason } => {
                write!(f, "journal {} fails verification at line {line}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for JournalError {}

/// An open journal, positioned after its last verified entry.
pub struct Journal {
    path: PathBuf,
    file: File,
    seq: u64,
    last_hash: String,
}

impl Journal {
    /// Open (creating 0600 if needed) and verify the whole chain.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let io = |error| JournalError::Io { path: path.to_owned(), error };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let existed = path.exists();
        let mut opts = OpenOptions::new();
        opts.append(true).create(true).read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let file = opts.open(path).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
            if mode != 0o600 {
                tracing::warn!("journal {} had mode {mode:o}; restricting to 0600", path.display());
                file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
        }
        if !existed {
            // Make the new file's directory entry durable too.
            if let Some(dir) = path.parent() {
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        let entries = read(path)?;
        let (seq, last_hash) = entries.last().map(|e| (e.seq, e.hash.clone())).unwrap_or((0, GENESIS.to_owned()));
        Ok(Self { path: path.to_owned(), file, seq, last_hash })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one entry and fsync it. Returns the entry as written.
    pub fn append(
        &mut self,
        at: DateTime<Utc>,
        kind: &str,
        actor: &str,
        body: serde_json::Value,
    ) -> Result<Entry, JournalError> {
        let seq = self.seq + 1;
        let hash = digest(&self.last_hash, seq, &at, kind, actor, &body);
        let entry = Entry {
            seq,
            at,
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            body,
            prev: self.last_hash.clone(),
            hash: hash.clone(),
        };
        let io = |error| JournalError::Io { path: self.path.clone(), error };
        let mut line = serde_json::to_vec(&entry).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.seq = seq;
        self.last_hash = hash;
        Ok(entry)
    }
}

/// Read and verify every entry. A missing file is an empty journal.
pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(error) => return Err(JournalError::Io { path: path.to_owned(), error }),
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut prev = GENESIS.to_owned();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let bad = |reason: String| JournalError::Tampered { path: path.to_owned(), line: i + 1, reason };
        let line = line.map_err(|error| JournalError::Io { path: path.to_owned(), error })?;
        if line.trim().is_empty() {
            return Err(bad("empty line".into()));
        }
        let e: Entry = serde_json::from_str(&line).map_err(|e| bad(format!("not a journal entry: {e}")))?;
        if e.seq != out.len() as u64 + 1 {
            return Err(bad(format!("sequence {} where {} was expected", e.seq, out.len() + 1)));
        }
        if e.prev != prev {
            return Err(bad("does not follow the previous entry".into()));
        }
        if digest(&e.prev, e.seq, &e.at, &e.kind, &e.actor, &e.body) != e.hash {
            return Err(bad("content does not match its hash".into()));
        }
        prev = e.hash.clone();
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("keydeck-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d.join("j.jsonl")
    }

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + s, 0).single().expect("time")
    }

    fn three(path: &Path) {
        let mut j = Journal::open(path).expect("open");
        for n in 0..3 {
            j.append(at(n), "test", "arn:aws:iam::1:user/a", serde_json::json!({"n": n})).expect("append");
        }
    }

    #[test]
    fn appends_chain_and_survive_reopen() {
        let p = tmp("reopen");
        three(&p);
        let mut j = Journal::open(&p).expect("reopen verifies");
        let e = j.append(at(9), "test", "x", serde_json::json!({})).expect("append");
        assert_eq!(e.seq, 4);
        let all = read(&p).expect("read");
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].prev, GENESIS);
        assert_eq!(all[3].prev, all[2].hash);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn an_edited_line_is_detected() {
        let p = tmp("edit");
        three(&p);
        let text = std::fs::read_to_string(&p).expect("read").replace("\"n\":1", "\"n\":7");
        std::fs::write(&p, text).expect("write");
        match read(&p) {
            Err(JournalError::Tampered { line, reason, .. }) => {
                assert_eq!(line, 2);
                assert!(reason.contains("hash"), "{reason}");
            }
            other => panic!("expected tampering, got {other:?}"),
        }
        assert!(Journal::open(&p).is_err(), "a broken journal is not appended to");
    }

    #[test]
    fn a_removed_line_is_detected() {
        let p = tmp("remove");
        three(&p);
        let text = std::fs::read_to_string(&p).expect("read");
        let kept: Vec<&str> = text.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| l).collect();
        std::fs::write(&p, kept.join("\n") + "\n").expect("write");
        assert!(matches!(read(&p), Err(JournalError::Tampered { line: 2, .. })));
    }

    #[test]
    fn missing_file_is_empty() {
        assert!(read(&tmp("missing")).expect("read").is_empty());
    }
}
