//! An append-only, hash-chained JSON Lines journal.
//!
//! Each line is one [`Entry`]; its `hash` is SHA-256 over the previous entry's hash and
//! this entry's canonical JSON (seq, at, kind, actor, body), so editing, removing or
//! reordering any line breaks the chain from there on. A line must also be byte for byte
//! the JSON keydeck writes for its entry: edits that parse to the same values (`z` for `Z`
//! in a timestamp, added whitespace, an unknown field) are caught too. The file is created
//! 0600, opened for append only, and every append is fsynced before it returns: a step
//! counts as done only once it is on disk. Appending never reads the file: the journal
//! keeps the last seq and hash in memory from the one verification done when it is opened.
//!
//! A crash during an append can leave an incomplete last line (bytes with no final
//! newline). [`scan`] reports it as a [`TornTail`], apart from tampering ([`Break`]);
//! [`read`] returns the committed entries before it; [`Journal::open`] refuses with
//! [`JournalError::TornTail`] (the incident log, `log.rs`, repairs it and records the
//! repair).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
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
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {}: {error}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// The chain is broken at this line (1-based): the file was edited or truncated.
    #[error("journal {} fails verification at line {line}: {reason}", path.display())]
    Tampered { path: PathBuf, line: usize, reason: String },
    /// The file ends in an incomplete line, as an append interrupted by a crash leaves it:
    /// `bytes` bytes at byte `offset` (line `line`) after the last complete entry.
    #[error(
        "journal {} ends in an incomplete line {line} ({bytes} bytes at offset {offset}), left by an interrupted write",
        path.display()
    )]
    TornTail { path: PathBuf, line: usize, offset: u64, bytes: u64 },
}

/// The first line at which a journal stops being the next link of its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// 1-based line number.
    pub line: usize,
    /// The seq the line claims, when it parses far enough to have one.
    pub seq: Option<u64>,
    pub problem: Problem,
}

/// What is wrong with a [`Break`]'s line. Every variant means the file was changed after it
/// was written (or damaged); none of them is what an interrupted append leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A complete but empty (or blank) line.
    EmptyLine,
    /// A complete line that is not a journal entry (garbage, or an edit that broke the JSON).
    NotAnEntry(String),
    /// Seq `found` where `expected` was due, and `expected` appears nowhere later: records
    /// `expected..found` were removed.
    MissingRecords { expected: u64, found: u64 },
    /// The seqs are out of order: `found` where `expected` was due; `expected` is at
    /// `expected_at_line` further down (when it is), or `found` went backwards.
    Reordered { expected: u64, found: u64, expected_at_line: Option<usize> },
    /// The same entry as an earlier line, again.
    Duplicate,
    /// The seq is right but `prev` is not the previous entry's hash.
    PrevMismatch,
    /// The entry's content does not match its hash: a field was edited.
    EditedContent,
    /// The values match the hash but the line is not the JSON keydeck wrote for them
    /// (edited without changing meaning: case, whitespace, an added field).
    Reformatted,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyLine => write!(f, "empty line"),
            Self::NotAnEntry(e) => write!(f, "not a journal entry: {e}"),
            Self::MissingRecords { expected, found } if found - expected == 1 => {
                write!(f, "missing record: seq {found} where {expected} was expected (record {expected} was removed)")
            }
            Self::MissingRecords { expected, found } => write!(
                f,
                "missing records: seq {found} where {expected} was expected (records {expected}..={} were removed)",
                found - 1
            ),
            Self::Reordered { expected, found, expected_at_line: Some(l) } => {
                write!(f, "reordered: seq {found} where {expected} was expected; seq {expected} is at line {l}")
            }
            Self::Reordered { expected, found, expected_at_line: None } => {
                write!(f, "reordered: seq {found} where {expected} was expected (the sequence goes backwards)")
            }
            Self::Duplicate => write!(f, "a copy of an earlier entry"),
            Self::PrevMismatch => write!(f, "does not follow the previous entry (prev mismatch)"),
            Self::EditedContent => write!(f, "content does not match its hash (edited)"),
            Self::Reformatted => write!(f, "not the JSON written for this entry (reformatted or edited)"),
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "line {} (seq {seq}): {}", self.line, self.problem),
            None => write!(f, "line {}: {}", self.line, self.problem),
        }
    }
}

/// Bytes after the last complete line: what a crash in the middle of an append leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Byte offset where the incomplete line starts (= length of the committed part).
    pub offset: u64,
    pub bytes: u64,
    /// 1-based line number of the incomplete line.
    pub line: usize,
    pub content: Vec<u8>,
}

/// Everything one pass over a journal found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The entries that verify, in order (up to the break or torn tail, if any).
    pub entries: Vec<Entry>,
    /// Bytes of the file covered by `entries`.
    pub committed_len: u64,
    /// The first line that fails verification (tampering).
    pub broken: Option<Break>,
    /// An incomplete last line (an interrupted write), when the chain before it is intact.
    pub torn_tail: Option<TornTail>,
}

#[cfg(test)]
thread_local! {
    static SCANS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many scans (full reads) this thread has done: lets tests prove appends never read.
#[cfg(test)]
pub(crate) fn scans_on_this_thread() -> usize {
    SCANS.with(std::cell::Cell::get)
}

/// Read and verify a journal file without failing on what it finds. A missing file is an
/// empty journal.
pub fn scan(path: &Path) -> Result<Scan, JournalError> {
    let io = |error| JournalError::Io { path: path.to_owned(), error };
    match File::open(path) {
        Ok(f) => scan_from(f).map_err(io),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Scan::default()),
        Err(error) => Err(io(error)),
    }
}

/// [`scan`] over any reader.
pub fn scan_from(reader: impl Read) -> std::io::Result<Scan> {
    #[cfg(test)]
    SCANS.with(|c| c.set(c.get() + 1));
    let mut reader = BufReader::new(reader);
    let mut out = Scan::default();
    let mut prev = GENESIS.to_owned();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            out.torn_tail = Some(TornTail { offset: out.committed_len, bytes: n as u64, line: line_no, content: buf });
            return Ok(out);
        }
        let text = &buf[..n - 1];
        let expected = out.entries.len() as u64 + 1;
        let broken = |seq, problem| Some(Break { line: line_no, seq, problem });
        if text.iter().all(u8::is_ascii_whitespace) {
            out.broken = broken(None, Problem::EmptyLine);
            return Ok(out);
        }
        let e: Entry = match serde_json::from_slice(text) {
            Ok(e) => e,
            Err(err) => {
                out.broken = broken(None, Problem::NotAnEntry(err.to_string()));
                return Ok(out);
            }
        };
        let seq = Some(e.seq);
        if e.seq < expected {
            let dup = out.entries.get(e.seq.saturating_sub(1) as usize) == Some(&e);
            let problem = if dup {
                Problem::Duplicate
            } else {
                Problem::Reordered { expected, found: e.seq, expected_at_line: None }
            };
            out.broken = broken(seq, problem);
            return Ok(out);
        }
        if e.seq > expected {
            let at = find_seq(&mut reader, expected, line_no)?;
            out.broken = broken(
                seq,
                match at {
                    Some(l) => Problem::Reordered { expected, found: e.seq, expected_at_line: Some(l) },
                    None => Problem::MissingRecords { expected, found: e.seq },
                },
            );
            return Ok(out);
        }
        if e.prev != prev {
            out.broken = broken(seq, Problem::PrevMismatch);
            return Ok(out);
        }
        if digest(&e.prev, e.seq, &e.at, &e.kind, &e.actor, &e.body) != e.hash {
            out.broken = broken(seq, Problem::EditedContent);
            return Ok(out);
        }
        if serde_json::to_vec(&e).ok().as_deref() != Some(text) {
            out.broken = broken(seq, Problem::Reformatted);
            return Ok(out);
        }
        prev = e.hash.clone();
        out.committed_len += n as u64;
        out.entries.push(e);
    }
}

/// The line (after `after`) of the first complete line claiming seq `seq`, if any.
fn find_seq(reader: &mut impl BufRead, seq: u64, after: usize) -> std::io::Result<Option<usize>> {
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    let mut buf = Vec::new();
    let mut line = after;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 || buf.last() != Some(&b'\n') {
            return Ok(None);
        }
        line += 1;
        if serde_json::from_slice::<SeqOnly>(&buf).is_ok_and(|s| s.seq == seq) {
            return Ok(Some(line));
        }
    }
}

/// Open (creating 0600 if needed) a journal file for appending and reading; fsync the
/// directory when the file is new. Returns the file and whether it was created.
pub(crate) fn open_file(path: &Path) -> Result<(File, bool), JournalError> {
    let io = |error| JournalError::Io { path: path.to_owned(), error };
    if let Some(dir) = path.parent() {
        super::log::private_dir(dir).map_err(io)?;
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
    #[cfg(unix)]
    if !existed {
        // Make the new file's directory entry durable too.
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
    }
    Ok((file, !existed))
}

/// An open journal, positioned after its last verified entry.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    seq: u64,
    last_hash: String,
    /// A write or fsync failed: what is on disk after the last good entry is unknown, so
    /// nothing more is appended through this handle (reopening verifies and, for incident
    /// logs, repairs).
    poisoned: bool,
}

impl Journal {
    /// Open (creating 0600 if needed) and verify the whole chain. A torn last line is
    /// refused with [`JournalError::TornTail`], tampering with [`JournalError::Tampered`].
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let (file, _) = open_file(path)?;
        let scan = scan(path)?;
        if let Some(b) = scan.broken {
            return Err(JournalError::Tampered { path: path.to_owned(), line: b.line, reason: b.problem.to_string() });
        }
        if let Some(t) = scan.torn_tail {
            return Err(JournalError::TornTail {
                path: path.to_owned(),
                line: t.line,
                offset: t.offset,
                bytes: t.bytes,
            });
        }
        let (seq, last_hash) = scan.entries.last().map(|e| (e.seq, e.hash.clone())).unwrap_or((0, GENESIS.to_owned()));
        Ok(Self::resume(path, file, seq, last_hash))
    }

    /// A journal over an already opened and verified file whose last entry is `seq`/`last_hash`.
    pub(crate) fn resume(path: &Path, file: File, seq: u64, last_hash: String) -> Self {
        Self { path: path.to_owned(), file, seq, last_hash, poisoned: false }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last entry's seq and hash ([`GENESIS`] and 0 when empty).
    pub fn head(&self) -> (u64, &str) {
        (self.seq, &self.last_hash)
    }

    /// Append one entry and fsync it. Returns the entry as written. Never reads the file.
    pub fn append(
        &mut self,
        at: DateTime<Utc>,
        kind: &str,
        actor: &str,
        body: serde_json::Value,
    ) -> Result<Entry, JournalError> {
        let io = |error| JournalError::Io { path: self.path.clone(), error };
        if self.poisoned {
            return Err(io(std::io::Error::other("an earlier write failed; reopen the journal")));
        }
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
        let mut line = serde_json::to_vec(&entry).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        if let Err(e) = self.file.write_all(&line).and_then(|()| self.file.sync_data()) {
            self.poisoned = true;
            return Err(io(e));
        }
        self.seq = seq;
        self.last_hash = hash;
        Ok(entry)
    }
}

/// Read and verify every committed entry. A missing file is an empty journal. An
/// incomplete last line (an append interrupted by a crash, never acknowledged) is not an
/// entry: it is left out, with a warning; [`scan`] reports it.
pub fn read(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let scan = scan(path)?;
    if let Some(b) = scan.broken {
        return Err(JournalError::Tampered { path: path.to_owned(), line: b.line, reason: b.problem.to_string() });
    }
    if let Some(t) = &scan.torn_tail {
        tracing::warn!(
            "journal {} ends in an incomplete line ({} bytes at offset {}); reading the entries before it",
            path.display(),
            t.bytes,
            t.offset
        );
    }
    Ok(scan.entries)
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

    #[test]
    fn an_incomplete_last_line_is_a_torn_tail_not_tampering() {
        let p = tmp("torn");
        three(&p);
        let committed = std::fs::metadata(&p).expect("meta").len();
        let mut f = OpenOptions::new().append(true).open(&p).expect("open");
        f.write_all(b"{\"seq\":4,\"at\":\"2026").expect("write");
        drop(f);
        let s = scan(&p).expect("scan");
        assert!(s.broken.is_none());
        assert_eq!(s.entries.len(), 3);
        let t = s.torn_tail.expect("torn");
        assert_eq!((t.offset, t.bytes, t.line), (committed, 19, 4));
        assert_eq!(read(&p).expect("read skips the torn line").len(), 3);
        assert!(matches!(Journal::open(&p), Err(JournalError::TornTail { line: 4, bytes: 19, .. })));
    }

    #[test]
    fn a_whole_entry_without_its_newline_is_still_torn() {
        let p = tmp("torn-whole");
        three(&p);
        let text = std::fs::read_to_string(&p).expect("read");
        std::fs::write(&p, text.trim_end()).expect("write");
        let s = scan(&p).expect("scan");
        assert_eq!((s.entries.len(), s.torn_tail.map(|t| t.line)), (2, Some(3)));
    }

    #[test]
    fn an_edit_that_keeps_the_values_is_still_caught() {
        // chrono reads "…Z" and "…z" as the same instant, so the hash alone would not see it.
        let p = tmp("reformat");
        three(&p);
        let text = std::fs::read_to_string(&p).expect("read");
        let edited = text.replacen("Z\"", "z\"", 2).replacen("z\"", "Z\"", 1);
        std::fs::write(&p, edited).expect("write");
        let s = scan(&p).expect("scan");
        assert_eq!(s.broken.map(|b| (b.line, b.problem)), Some((2, Problem::Reformatted)));
    }

    #[test]
    fn bodies_with_awkward_floats_verify() {
        let p = tmp("floats");
        let mut j = Journal::open(&p).expect("open");
        for f in [1.947700395895162e-169, -1.490143767845386e+129, 0.1, 1e300] {
            j.append(at(0), "test", "x", serde_json::json!({ "f": f })).expect("append");
        }
        assert_eq!(read(&p).expect("verifies").len(), 4);
    }
}
