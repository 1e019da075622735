//! The byte layout of records and log entries in persistent engines (format version 2).
//!
//! ```text
//! record:    create_revision u64 LE | mod_revision u64 LE | value…
//! log entry: tag u8 | [create_revision u64 LE | prev_mod_revision u64 LE]
//!            | key_len u32 LE | key | value_len u32 LE | value | [prev_len u32 LE | prev]
//!            tag 0 = Put that created the key      (no revisions, no prev)
//!            tag 3 = Put that updated the key      (revisions; prev follows)
//!            tag 4 = Delete, value = last value    (revisions; prev is the same bytes)
//!            tag 1, 2 = format 1's update and delete, without the revisions: still read
//! ```
//!
//! The revision of a log entry is its table key, so it is not repeated. The revisions of an
//! update or delete are the state it replaced, so that a list can be read as of an earlier
//! revision (every page of a paged list at the first page's revision). Any change to this
//! layout must bump [`FORMAT_VERSION`], so that an older build refuses the data instead of
//! misreading it; [`READABLE_FORMATS`] lists the older layouts this build still reads.

use bytes::Bytes;

use crate::engine::Record;
use crate::{Event, EventKind};

/// The stored format this build reads and writes.
pub(crate) const FORMAT_VERSION: u64 = 2;

/// Formats this build opens: format 1 differs only in log entries this build still decodes,
/// so opening such a file just records format 2 for what is written from then on.
pub(crate) const READABLE_FORMATS: [u64; 2] = [1, 2];

/// Why stored bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("stored {what} is truncated")]
    Truncated { what: &'static str },
    #[error("unknown log entry tag {0}")]
    UnknownTag(u8),
    #[error("stored key is not utf-8")]
    KeyNotUtf8(#[source] std::str::Utf8Error),
    #[error("{what} of {len} bytes is too large to store")]
    TooLarge { what: &'static str, len: usize },
}

const TAG_CREATE: u8 = 0;
const TAG_UPDATE_V1: u8 = 1;
const TAG_DELETE_V1: u8 = 2;
const TAG_UPDATE: u8 = 3;
const TAG_DELETE: u8 = 4;

pub(crate) fn encode_record(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + record.value.len());
    out.extend_from_slice(&record.create_revision.to_le_bytes());
    out.extend_from_slice(&record.mod_revision.to_le_bytes());
    out.extend_from_slice(&record.value);
    out
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
    let mut reader = Reader {
        bytes,
        what: "record",
    };
    let create_revision = reader.u64()?;
    let mod_revision = reader.u64()?;
    Ok(Record {
        create_revision,
        mod_revision,
        value: Bytes::copy_from_slice(reader.bytes),
    })
}

pub(crate) fn encode_event(event: &Event) -> Result<Vec<u8>, CodecError> {
    let tag = match (event.kind, &event.prev_value) {
        (EventKind::Put, None) => TAG_CREATE,
        (EventKind::Put, Some(_)) => TAG_UPDATE,
        (EventKind::Delete, _) => TAG_DELETE,
    };
    let prev_len = if tag == TAG_UPDATE {
        event.prev_value.as_ref().map_or(0, |prev| 4 + prev.len())
    } else {
        0
    };
    let mut out = Vec::with_capacity(25 + event.key.len() + event.value.len() + prev_len);
    out.push(tag);
    if tag != TAG_CREATE {
        out.extend_from_slice(&event.create_revision.to_le_bytes());
        out.extend_from_slice(&event.prev_mod_revision.to_le_bytes());
    }
    put_chunk(&mut out, "key", event.key.as_bytes())?;
    put_chunk(&mut out, "value", &event.value)?;
    if tag == TAG_UPDATE
        && let Some(prev) = &event.prev_value
    {
        put_chunk(&mut out, "previous value", prev)?;
    }
    Ok(out)
}

fn put_chunk(out: &mut Vec<u8>, what: &'static str, chunk: &[u8]) -> Result<(), CodecError> {
    let len = u32::try_from(chunk.len()).map_err(|_| CodecError::TooLarge {
        what,
        len: chunk.len(),
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(chunk);
    Ok(())
}

/// Only the key of a log entry, without copying anything: watches filter on it.
pub(crate) fn decode_event_key(bytes: &[u8]) -> Result<&str, CodecError> {
    let mut reader = Reader {
        bytes,
        what: "log entry",
    };
    let tag = reader.tag()?;
    reader.revisions(tag)?;
    reader.key()
}

pub(crate) fn decode_event(revision: u64, bytes: &[u8]) -> Result<Event, CodecError> {
    let mut reader = Reader {
        bytes,
        what: "log entry",
    };
    let tag = reader.tag()?;
    let (create_revision, prev_mod_revision) = reader.revisions(tag)?.unwrap_or((0, 0));
    let key = reader.key()?.to_owned();
    let value = Bytes::copy_from_slice(reader.chunk()?);
    let (kind, prev_value) = match tag {
        TAG_CREATE => (EventKind::Put, None),
        TAG_UPDATE | TAG_UPDATE_V1 => (
            EventKind::Put,
            Some(Bytes::copy_from_slice(reader.chunk()?)),
        ),
        _ => (EventKind::Delete, Some(value.clone())),
    };
    Ok(Event {
        revision,
        kind,
        key,
        value,
        prev_value,
        create_revision: if tag == TAG_CREATE {
            revision
        } else {
            create_revision
        },
        prev_mod_revision,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.bytes.len() < n {
            return Err(CodecError::Truncated { what: self.what });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn tag(&mut self) -> Result<u8, CodecError> {
        let [tag] = self.array()?;
        match tag {
            TAG_CREATE | TAG_UPDATE_V1 | TAG_DELETE_V1 | TAG_UPDATE | TAG_DELETE => Ok(tag),
            other => Err(CodecError::UnknownTag(other)),
        }
    }

    /// The replaced state's revisions, which the format-2 update and delete entries carry.
    fn revisions(&mut self, tag: u8) -> Result<Option<(u64, u64)>, CodecError> {
        if matches!(tag, TAG_UPDATE | TAG_DELETE) {
            Ok(Some((self.u64()?, self.u64()?)))
        } else {
            Ok(None)
        }
    }

    fn chunk(&mut self) -> Result<&'a [u8], CodecError> {
        let len = u32::from_le_bytes(self.array()?);
        // u32 always fits in usize on the 32- and 64-bit targets we build for.
        self.take(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn key(&mut self) -> Result<&'a str, CodecError> {
        std::str::from_utf8(self.chunk()?).map_err(CodecError::KeyNotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, prev: Option<&'static [u8]>) -> Event {
        Event {
            revision: 7,
            kind,
            key: "/registry/pods/default/nginx".into(),
            value: Bytes::from_static(b"{\"kind\":\"Pod\"}"),
            prev_value: prev.map(Bytes::from_static),
            create_revision: if prev.is_some() || kind == EventKind::Delete {
                3
            } else {
                7
            },
            prev_mod_revision: if prev.is_some() || kind == EventKind::Delete {
                5
            } else {
                0
            },
        }
    }

    #[test]
    fn events_round_trip() -> Result<(), CodecError> {
        let delete = Event {
            prev_value: Some(Bytes::from_static(b"{\"kind\":\"Pod\"}")),
            ..event(EventKind::Delete, None)
        };
        for original in [
            event(EventKind::Put, None),
            event(EventKind::Put, Some(b"old")),
            event(EventKind::Put, Some(b"")),
            delete,
        ] {
            let bytes = encode_event(&original)?;
            assert_eq!(decode_event_key(&bytes)?, original.key);
            assert_eq!(decode_event(7, &bytes)?, original);
        }
        Ok(())
    }

    #[test]
    fn format_1_entries_are_still_read() -> Result<(), CodecError> {
        // Format 1's update: tag 1, key, value, prev — no revisions.
        let mut bytes = vec![TAG_UPDATE_V1];
        for chunk in [&b"/k"[..], b"new", b"old"] {
            put_chunk(&mut bytes, "chunk", chunk)?;
        }
        let event = decode_event(9, &bytes)?;
        assert_eq!(decode_event_key(&bytes)?, "/k");
        assert_eq!(event.prev_value, Some(Bytes::from_static(b"old")));
        assert_eq!((event.create_revision, event.prev_mod_revision), (0, 0));
        Ok(())
    }

    #[test]
    fn records_round_trip() -> Result<(), CodecError> {
        let record = Record {
            create_revision: 3,
            mod_revision: u64::MAX,
            value: Bytes::from_static(b"value"),
        };
        assert_eq!(decode_record(&encode_record(&record))?, record);
        Ok(())
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() -> Result<(), CodecError> {
        let bytes = encode_event(&event(EventKind::Put, Some(b"old")))?;
        for len in 0..bytes.len() {
            assert!(
                decode_event(1, &bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
        assert!(matches!(
            decode_event(1, &[9, 0, 0, 0, 0]),
            Err(CodecError::UnknownTag(9))
        ));
        assert!(matches!(
            decode_record(&[0; 15]),
            Err(CodecError::Truncated { .. })
        ));
        Ok(())
    }
}
