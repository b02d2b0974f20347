//! The chunk format: what the recorder stores and the uploader sends.
//!
//! A recording has streams (output, input, events, stderr). Each stream is cut into chunks of at
//! most [`MAX_CHUNK_BYTES`] of payload or [`MAX_CHUNK_SPAN_US`] of time. A chunk's body is
//! postcard-encoded ([`ChunkBody`]), then zstd-compressed into a blob. Each chunk carries a
//! SHA-256 over the previous chunk's hash, its identity (recording, stream, seq) and its blob, so a
//! dropped, reordered or altered chunk breaks the chain. See docs/format.md.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Largest payload (bytes of data in records) of one chunk.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// Longest time one chunk spans, from its first record to its last, in microseconds.
pub const MAX_CHUNK_SPAN_US: u64 = 1_000_000;
/// Version of the body encoding, bound into the hash chain.
pub const FORMAT_VERSION: u8 = 1;
/// Largest decompressed body accepted (payload plus framing), against hostile blobs.
const MAX_BODY_BYTES: usize = 4 * MAX_CHUNK_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk {seq} of the {stream} stream: cannot decompress: {detail}")]
    Decompress {
        stream: Stream,
        seq: u64,
        detail: String,
    },
    #[error("chunk {seq} of the {stream} stream: cannot decode: {detail}")]
    Decode {
        stream: Stream,
        seq: u64,
        detail: String,
    },
    #[error("chunk {seq} of the {stream} stream: hash chain broken (altered, dropped or reordered chunk)")]
    Chain { stream: Stream, seq: u64 },
    #[error("chunk {seq} of the {stream} stream: body says recording {body_recording}, stream {body_stream}, seq {body_seq}")]
    Mismatch {
        stream: Stream,
        seq: u64,
        body_recording: Uuid,
        body_stream: u8,
        body_seq: u64,
    },
    #[error("unknown stream number {0}")]
    UnknownStream(u8),
}

/// The streams of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Stream {
    /// What the terminal showed (pty mode) or the command's stdout (pipe mode).
    Output = 0,
    /// What the user typed (pty mode) or fed to stdin (pipe mode).
    Input = 1,
    /// [`Event`]s: resizes, hidden-input markers, notices.
    Events = 2,
    /// The command's stderr (pipe mode only).
    Stderr = 3,
}

impl Stream {
    pub const ALL: [Stream; 4] = [
        Stream::Output,
        Stream::Input,
        Stream::Events,
        Stream::Stderr,
    ];

    pub fn from_u8(n: u8) -> Result<Stream, ChunkError> {
        Stream::ALL
            .get(usize::from(n))
            .copied()
            .ok_or(ChunkError::UnknownStream(n))
    }

    pub fn name(self) -> &'static str {
        match self {
            Stream::Output => "output",
            Stream::Input => "input",
            Stream::Events => "events",
            Stream::Stderr => "stderr",
        }
    }
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the events stream holds, one per record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The terminal was resized.
    Resize { cols: u16, rows: u16 },
    /// Input was typed while the terminal did not echo (a password); it was not stored.
    HiddenInput,
    /// The recorder showed this notice to the user.
    Notice(String),
    /// Recording stopped early (quota); the session went on unrecorded.
    Truncated(String),
}

impl Event {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Event> {
        postcard::from_bytes(bytes).ok()
    }
}

/// One record: some bytes and the time since the previous record of the chunk (for the first
/// record, since the chunk's `first_us`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub delay_us: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// The decoded content of a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkBody {
    pub recording: Uuid,
    pub stream: u8,
    pub seq: u64,
    /// Offset of the first record from the start of the recording, in microseconds.
    pub first_us: u64,
    pub records: Vec<Record>,
}

impl ChunkBody {
    /// The records with their absolute offsets from the start of the recording.
    pub fn timed_records(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut t = self.first_us;
        self.records.iter().map(move |r| {
            t = t.saturating_add(r.delay_us);
            (t, r.data.as_slice())
        })
    }

    pub fn payload_len(&self) -> usize {
        self.records.iter().map(|r| r.data.len()).sum()
    }
}

/// A chunk as stored and sent: compressed body plus its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    pub recording: Uuid,
    pub stream: Stream,
    pub seq: u64,
    pub first_us: u64,
    pub last_us: u64,
    /// Payload bytes (sum of record data).
    pub raw_len: u64,
    /// zstd(postcard(ChunkBody)).
    pub blob: Vec<u8>,
    pub hash: [u8; 32],
}

/// The hash that precedes the first chunk of a stream.
pub fn chain_start(recording: Uuid, stream: Stream) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"segura-chunk-chain");
    h.update([FORMAT_VERSION]);
    h.update(recording.as_bytes());
    h.update([stream as u8]);
    h.finalize().into()
}

/// The hash of a chunk, given the previous one.
pub fn chain_hash(
    prev: &[u8; 32],
    recording: Uuid,
    stream: Stream,
    seq: u64,
    blob: &[u8],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(recording.as_bytes());
    h.update([stream as u8]);
    h.update(seq.to_le_bytes());
    h.update((blob.len() as u64).to_le_bytes());
    h.update(blob);
    h.finalize().into()
}

/// Encodes, compresses and chains a body.
pub fn seal(body: &ChunkBody, prev: &[u8; 32], level: i32) -> Result<SealedChunk, ChunkError> {
    let stream = Stream::from_u8(body.stream)?;
    let encoded = postcard::to_stdvec(body).map_err(|e| ChunkError::Decode {
        stream,
        seq: body.seq,
        detail: e.to_string(),
    })?;
    let blob = zstd::bulk::compress(&encoded, level).map_err(|e| ChunkError::Decompress {
        stream,
        seq: body.seq,
        detail: e.to_string(),
    })?;
    let last_us = body
        .timed_records()
        .last()
        .map_or(body.first_us, |(t, _)| t);
    let hash = chain_hash(prev, body.recording, stream, body.seq, &blob);
    Ok(SealedChunk {
        recording: body.recording,
        stream,
        seq: body.seq,
        first_us: body.first_us,
        last_us,
        raw_len: body.payload_len() as u64,
        blob,
        hash,
    })
}

impl SealedChunk {
    /// Decompresses and decodes the body, checking it belongs where the chunk says.
    pub fn open(&self) -> Result<ChunkBody, ChunkError> {
        let (stream, seq) = (self.stream, self.seq);
        let encoded = zstd::bulk::decompress(&self.blob, MAX_BODY_BYTES).map_err(|e| {
            ChunkError::Decompress {
                stream,
                seq,
                detail: e.to_string(),
            }
        })?;
        let body: ChunkBody = postcard::from_bytes(&encoded).map_err(|e| ChunkError::Decode {
            stream,
            seq,
            detail: e.to_string(),
        })?;
        if body.recording != self.recording || body.stream != stream as u8 || body.seq != seq {
            return Err(ChunkError::Mismatch {
                stream,
                seq,
                body_recording: body.recording,
                body_stream: body.stream,
                body_seq: body.seq,
            });
        }
        Ok(body)
    }

    /// Checks this chunk's hash given the previous chunk's (or [`chain_start`]).
    pub fn verify(&self, prev: &[u8; 32]) -> Result<(), ChunkError> {
        if chain_hash(prev, self.recording, self.stream, self.seq, &self.blob) == self.hash {
            Ok(())
        } else {
            Err(ChunkError::Chain {
                stream: self.stream,
                seq: self.seq,
            })
        }
    }
}

/// Verifies a whole stream in order: seqs 0, 1, 2… with an unbroken chain.
pub fn verify_stream(chunks: &[SealedChunk]) -> Result<(), ChunkError> {
    let Some(first) = chunks.first() else {
        return Ok(());
    };
    let mut prev = chain_start(first.recording, first.stream);
    for (expected, c) in chunks.iter().enumerate() {
        if c.seq != expected as u64 {
            return Err(ChunkError::Chain {
                stream: c.stream,
                seq: expected as u64,
            });
        }
        c.verify(&prev)?;
        prev = c.hash;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(seq: u64, data: &[&[u8]]) -> ChunkBody {
        ChunkBody {
            recording: Uuid::from_u128(7),
            stream: Stream::Output as u8,
            seq,
            first_us: 1000 * seq,
            records: data
                .iter()
                .enumerate()
                .map(|(i, d)| Record {
                    delay_us: i as u64 * 10,
                    data: d.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn round_trip_and_chain() {
        let id = Uuid::from_u128(7);
        let mut prev = chain_start(id, Stream::Output);
        let mut chunks = Vec::new();
        for seq in 0..3 {
            let b = body(seq, &[b"hello", &[0xff, 0x00, 0xc3], b"world"]);
            let c = seal(&b, &prev, 3).unwrap();
            assert_eq!(c.open().unwrap(), b);
            assert_eq!(c.raw_len, 13);
            assert_eq!(c.last_us, 1000 * seq + 30);
            prev = c.hash;
            chunks.push(c);
        }
        verify_stream(&chunks).unwrap();

        let mut altered = chunks.clone();
        altered[1].blob[5] ^= 1;
        assert!(matches!(
            verify_stream(&altered),
            Err(ChunkError::Chain { seq: 1, .. })
        ));
        let mut dropped = chunks.clone();
        dropped.remove(1);
        assert!(matches!(
            verify_stream(&dropped),
            Err(ChunkError::Chain { seq: 1, .. })
        ));
        let mut swapped = chunks.clone();
        swapped.swap(0, 1);
        assert!(verify_stream(&swapped).is_err());
    }

    #[test]
    fn hostile_blobs_are_errors_not_panics() {
        let c = seal(&body(0, &[b"x"]), &[0; 32], 3).unwrap();
        for blob in [vec![], vec![0u8; 10], b"\x28\xb5\x2f\xfd garbage".to_vec()] {
            let bad = SealedChunk { blob, ..c.clone() };
            assert!(bad.open().is_err());
        }
        // A zstd bomb: 100 MiB of zeros compresses to a few KiB but must be refused.
        let bomb = zstd::bulk::compress(&vec![0u8; 100 << 20], 3).unwrap();
        let bad = SealedChunk {
            blob: bomb,
            ..c.clone()
        };
        assert!(matches!(bad.open(), Err(ChunkError::Decompress { .. })));
        // A valid body claiming another place.
        let other = seal(&body(5, &[b"x"]), &[0; 32], 3).unwrap();
        let bad = SealedChunk {
            blob: other.blob,
            ..c
        };
        assert!(matches!(bad.open(), Err(ChunkError::Mismatch { .. })));
    }

    #[test]
    fn events_round_trip() {
        for e in [
            Event::Resize {
                cols: 132,
                rows: 43,
            },
            Event::HiddenInput,
            Event::Notice("recorded".into()),
        ] {
            assert_eq!(Event::decode(&e.encode()), Some(e));
        }
        assert_eq!(Event::decode(&[0xff, 0xff]), None);
    }
}
