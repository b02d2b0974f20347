//! Getting recordings back out: the merged timeline of a recording, asciicast v2 (for
//! asciinema's player and tools), the text transcript as the screen showed it, and the list of
//! commands typed.

mod asciicast;
mod text;

pub use asciicast::write_asciicast;
pub use text::{commands, transcript, CommandLine};

use uuid::Uuid;

use crate::chunk::{self, ChunkError, Event, Stream};
use crate::spool::{RecordingRow, Spool, SpoolError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("recording {id}: {source}")]
    Chunk { id: Uuid, source: ChunkError },
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// One thing that happened, at `t_us` microseconds after the recording started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Output(Vec<u8>),
    Stderr(Vec<u8>),
    Input(Vec<u8>),
    Event(Event),
    /// An events-stream record this version cannot decode (kept, not dropped).
    Unknown(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    pub t_us: u64,
    pub item: Item,
}

/// A recording's metadata and every record of every stream, verified and in time order.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub row: RecordingRow,
    pub items: Vec<Timed>,
}

impl Timeline {
    /// Loads a recording (by id or unique id prefix), verifying each stream's hash chain.
    pub fn load(spool: &Spool, id: &str) -> Result<Timeline, ExportError> {
        let row = spool.recording(id)?;
        let rid = row.meta.id;
        Timeline::build(row, |stream| {
            spool.chunks(rid, stream).map_err(ExportError::from)
        })
    }

    /// Builds a timeline from a recording's metadata and its chunks (from the spool, or from the
    /// platform's store), verifying each stream's hash chain.
    pub fn build(
        row: RecordingRow,
        mut chunks_of: impl FnMut(Stream) -> Result<Vec<chunk::SealedChunk>, ExportError>,
    ) -> Result<Timeline, ExportError> {
        let id = row.meta.id;
        let mut items: Vec<(u64, u8, Item)> = Vec::new();
        // Order for equal times: resize before input before the output that echoes it.
        for (stream, rank) in [
            (Stream::Events, 0),
            (Stream::Input, 1),
            (Stream::Output, 2),
            (Stream::Stderr, 3),
        ] {
            let chunks = chunks_of(stream)?;
            let err = |source| ExportError::Chunk { id, source };
            chunk::verify_stream(&chunks).map_err(err)?;
            let mut decoder = chunk::ChunkDecoder::new(id, stream).map_err(err)?;
            for c in &chunks {
                let body = decoder.open(c).map_err(err)?;
                for (t, data) in body.timed_records() {
                    let item = match stream {
                        Stream::Output => Item::Output(data.to_vec()),
                        Stream::Stderr => Item::Stderr(data.to_vec()),
                        Stream::Input => Item::Input(data.to_vec()),
                        Stream::Events => match Event::decode(data) {
                            Some(e) => Item::Event(e),
                            None => Item::Unknown(data.to_vec()),
                        },
                    };
                    items.push((t, rank, item));
                }
            }
        }
        items.sort_by_key(|(t, rank, _)| (*t, *rank));
        Ok(Timeline {
            row,
            items: items
                .into_iter()
                .map(|(t_us, _, item)| Timed { t_us, item })
                .collect(),
        })
    }

    /// The bytes of one stream, concatenated (byte-exact).
    pub fn raw(&self, stream: Stream) -> Vec<u8> {
        let mut out = Vec::new();
        for t in &self.items {
            match (&t.item, stream) {
                (Item::Output(d), Stream::Output)
                | (Item::Stderr(d), Stream::Stderr)
                | (Item::Input(d), Stream::Input) => out.extend_from_slice(d),
                _ => {}
            }
        }
        out
    }
}

/// Decodes UTF-8 across record boundaries: a code point split between two records is joined;
/// bytes that are not UTF-8 become U+FFFD.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    carry: Vec<u8>,
}

impl Utf8Stream {
    pub fn decode(&mut self, data: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(data);
        let mut out = String::with_capacity(bytes.len());
        let mut rest = bytes.as_slice();
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &bad[n..];
                        }
                        None => {
                            // An incomplete sequence at the end: wait for the next record.
                            self.carry = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// What is left at the very end (an incomplete sequence) as U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.carry.is_empty() {
            String::new()
        } else {
            self.carry.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_records_is_joined() {
        let mut d = Utf8Stream::default();
        let euro = "€".as_bytes();
        assert_eq!(d.decode(&[b'a', euro[0]]), "a");
        assert_eq!(d.decode(&euro[1..]), "€");
        assert_eq!(d.decode(&[0xff, b'b']), "\u{fffd}b");
        assert_eq!(d.decode(&[0xe2]), "");
        assert_eq!(d.finish(), "\u{fffd}");
    }
}
