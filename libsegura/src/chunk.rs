//! The chunk format: what the recorder stores and the uploader sends.
//!
//! A recording has streams (output, input, events, stderr). Each stream is cut into chunks of at
//! most [`MAX_CHUNK_BYTES`] of payload or [`MAX_CHUNK_SPAN_US`] of time. A chunk's body is
//! postcard-encoded ([`ChunkBody`]) and fed to the stream's zstd compressor, which is flushed at
//! the end of every chunk: the chunk's blob is what that flush produced. Later chunks refer back
//! to earlier ones (the compressor keeps a 1 MiB window), which is what makes terminal text
//! compress as well as one continuous stream, so a stream's chunks are decoded in order.
//! Each chunk carries a SHA-256 over the previous chunk's hash, its identity (recording, stream,
//! seq) and its blob, so a dropped, reordered or altered chunk breaks the chain. See
//! docs/format.md.

use std::io::Write;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The size a chunk is cut to, as stored (compressed): the writer sizes each chunk's payload
/// from the stream's recent compression ratio so that its blob comes out at about this size.
pub const TARGET_CHUNK_BYTES: usize = 64 * 1024;
/// Smallest payload target (for output that does not compress: blob ≈ payload ≤ 64 KiB).
pub const MIN_CHUNK_PAYLOAD: usize = 60 * 1024;
/// Largest payload (bytes of data in records) of one chunk, however well it compresses.
pub const MAX_CHUNK_PAYLOAD: usize = 1024 * 1024;
/// Longest time one chunk spans, from its first record to its last, in microseconds.
pub const MAX_CHUNK_SPAN_US: u64 = 1_000_000;
/// Version of the body encoding, bound into the hash chain.
pub const FORMAT_VERSION: u8 = 1;
/// Largest decompressed body accepted (payload plus framing), against hostile blobs.
const MAX_BODY_BYTES: usize = 8 * MAX_CHUNK_PAYLOAD;

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

/// How a body is laid out before compression: this postcard header, then the records' data
/// back to back.
#[derive(Serialize, Deserialize)]
struct Header {
    recording: Uuid,
    stream: u8,
    seq: u64,
    first_us: u64,
    /// (delay_us, length) of each record.
    records: Vec<(u64, u32)>,
}

impl Header {
    fn of(body: &ChunkBody) -> Header {
        Header {
            recording: body.recording,
            stream: body.stream,
            seq: body.seq,
            first_us: body.first_us,
            records: body
                .records
                .iter()
                .map(|r| (r.delay_us, r.data.len() as u32))
                .collect(),
        }
    }

    fn decode(bytes: &[u8]) -> Result<ChunkBody, String> {
        let (h, mut data) =
            postcard::take_from_bytes::<Header>(bytes).map_err(|e| e.to_string())?;
        let total: u64 = h.records.iter().map(|&(_, n)| u64::from(n)).sum();
        if total != data.len() as u64 {
            return Err(format!(
                "records say {total} bytes of data, the chunk has {}",
                data.len()
            ));
        }
        let records = h
            .records
            .iter()
            .map(|&(delay_us, n)| {
                let (d, rest) = data.split_at(n as usize);
                data = rest;
                Record {
                    delay_us,
                    data: d.to_vec(),
                }
            })
            .collect();
        Ok(ChunkBody {
            recording: h.recording,
            stream: h.stream,
            seq: h.seq,
            first_us: h.first_us,
            records,
        })
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

/// The zstd window: how far back a chunk may refer (and what a decoder must keep).
const WINDOW_LOG: u32 = 20;
/// Level used while the stream does not compress (random data, already-compressed output):
/// higher levels gain nothing there and cost several times the CPU.
const FAST_LEVEL: i32 = 1;

/// Compresses and chains the chunks of one stream, in order.
///
/// The level adapts: while chunks shrink to less than 40% the configured level is used; once a
/// chunk stays above 50% the stream switches to level 1 until the data compresses again. A
/// switch ends the zstd frame with the current chunk, so decoders see ordinary concatenated
/// frames.
pub struct ChunkEncoder {
    recording: Uuid,
    stream: Stream,
    level: i32,
    current: i32,
    zstd: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    prev: [u8; 32],
    next_seq: u64,
    /// Stored bytes per payload byte of the last chunk.
    ratio: f64,
}

impl ChunkEncoder {
    /// How much payload the next chunk should take so that it is stored in about
    /// [`TARGET_CHUNK_BYTES`] (between [`MIN_CHUNK_PAYLOAD`] and [`MAX_CHUNK_PAYLOAD`]).
    pub fn payload_target(&self) -> usize {
        let target = 0.95 * TARGET_CHUNK_BYTES as f64 / self.ratio.max(1e-3);
        (target as usize).clamp(MIN_CHUNK_PAYLOAD, MAX_CHUNK_PAYLOAD)
    }

    pub fn new(recording: Uuid, stream: Stream, level: i32) -> ChunkEncoder {
        ChunkEncoder {
            recording,
            stream,
            level,
            current: level,
            zstd: None,
            prev: chain_start(recording, stream),
            next_seq: 0,
            ratio: 1.0,
        }
    }

    fn compressor(
        &mut self,
    ) -> std::io::Result<&mut zstd::stream::write::Encoder<'static, Vec<u8>>> {
        if self.zstd.is_none() {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), self.current)?;
            e.window_log(WINDOW_LOG)?;
            e.include_checksum(false)?;
            e.include_contentsize(false)?;
            e.include_dictid(false)?;
            self.zstd = Some(e);
        }
        Ok(self.zstd.as_mut().expect("set above"))
    }

    /// Seals the next chunk of the stream: `records` starting at `first_us`.
    pub fn seal(&mut self, first_us: u64, records: Vec<Record>) -> Result<SealedChunk, ChunkError> {
        let (stream, seq) = (self.stream, self.next_seq);
        let body = ChunkBody {
            recording: self.recording,
            stream: stream as u8,
            seq,
            first_us,
            records,
        };
        let header = postcard::to_stdvec(&Header::of(&body)).map_err(|e| ChunkError::Decode {
            stream,
            seq,
            detail: e.to_string(),
        })?;
        let zerr = |e: std::io::Error| ChunkError::Decompress {
            stream,
            seq,
            detail: e.to_string(),
        };
        // Two flushes: the header, then the data alone, so the data's zstd block is not mixed
        // with binary framing (which costs about 1% on text that is already hard to compress).
        let z = self.compressor().map_err(zerr)?;
        z.write_all(&header).map_err(zerr)?;
        z.flush().map_err(zerr)?;
        for r in &body.records {
            z.write_all(&r.data).map_err(zerr)?;
        }
        z.flush().map_err(zerr)?;
        let mut blob = std::mem::take(z.get_mut());
        let ratio = blob.len() as f64 / (header.len() + body.payload_len()).max(1) as f64;
        self.ratio = ratio;
        let wanted = if ratio > 0.5 {
            FAST_LEVEL
        } else if ratio < 0.4 {
            self.level
        } else {
            self.current
        };
        if wanted != self.current {
            // End the frame with this chunk; the next chunk starts a frame at the new level.
            if let Some(z) = self.zstd.take() {
                blob.extend_from_slice(&z.finish().map_err(zerr)?);
            }
            self.current = wanted;
        }
        let last_us = body.timed_records().last().map_or(first_us, |(t, _)| t);
        let hash = chain_hash(&self.prev, self.recording, stream, seq, &blob);
        self.prev = hash;
        self.next_seq += 1;
        Ok(SealedChunk {
            recording: self.recording,
            stream,
            seq,
            first_us,
            last_us,
            raw_len: body.payload_len() as u64,
            blob,
            hash,
        })
    }
}

/// A `Write` that refuses to hold more than `cap` bytes (against decompression bombs).
struct Capped {
    buf: Vec<u8>,
    cap: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.cap {
            return Err(std::io::Error::other(
                "chunk decompresses to more than its limit",
            ));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Verifies and decodes the chunks of one stream, in order (seq 0, 1, 2…).
pub struct ChunkDecoder {
    recording: Uuid,
    stream: Stream,
    zstd: zstd::stream::write::Decoder<'static, Capped>,
    prev: [u8; 32],
    next_seq: u64,
}

impl ChunkDecoder {
    pub fn new(recording: Uuid, stream: Stream) -> Result<ChunkDecoder, ChunkError> {
        let zerr = |e: std::io::Error| ChunkError::Decompress {
            stream,
            seq: 0,
            detail: e.to_string(),
        };
        let mut zstd = zstd::stream::write::Decoder::new(Capped {
            buf: Vec::new(),
            cap: MAX_BODY_BYTES,
        })
        .map_err(zerr)?;
        zstd.window_log_max(WINDOW_LOG + 1).map_err(zerr)?;
        Ok(ChunkDecoder {
            recording,
            stream,
            zstd,
            prev: chain_start(recording, stream),
            next_seq: 0,
        })
    }

    /// Checks the chunk's place in the chain and decodes it.
    pub fn open(&mut self, c: &SealedChunk) -> Result<ChunkBody, ChunkError> {
        let (stream, seq) = (self.stream, self.next_seq);
        if c.recording != self.recording || c.stream != stream || c.seq != seq {
            return Err(ChunkError::Chain { stream, seq });
        }
        c.verify(&self.prev)?;
        let zerr = |e: std::io::Error| ChunkError::Decompress {
            stream,
            seq,
            detail: e.to_string(),
        };
        self.zstd.get_mut().buf.clear();
        self.zstd.write_all(&c.blob).map_err(zerr)?;
        self.zstd.flush().map_err(zerr)?;
        let encoded = std::mem::take(&mut self.zstd.get_mut().buf);
        let body = Header::decode(&encoded).map_err(|detail| ChunkError::Decode {
            stream,
            seq,
            detail,
        })?;
        if body.recording != c.recording || body.stream != stream as u8 || body.seq != seq {
            return Err(ChunkError::Mismatch {
                stream,
                seq,
                body_recording: body.recording,
                body_stream: body.stream,
                body_seq: body.seq,
            });
        }
        self.prev = c.hash;
        self.next_seq += 1;
        Ok(body)
    }
}

impl SealedChunk {
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

    fn recs(data: &[&[u8]]) -> Vec<Record> {
        data.iter()
            .enumerate()
            .map(|(i, d)| Record {
                delay_us: i as u64 * 10,
                data: d.to_vec(),
            })
            .collect()
    }

    fn encode(n: u64, data: &[&[u8]]) -> Vec<SealedChunk> {
        let mut enc = ChunkEncoder::new(Uuid::from_u128(7), Stream::Output, 3);
        (0..n)
            .map(|seq| enc.seal(1000 * seq, recs(data)).unwrap())
            .collect()
    }

    fn decode(chunks: &[SealedChunk]) -> Result<Vec<ChunkBody>, ChunkError> {
        let mut dec = ChunkDecoder::new(Uuid::from_u128(7), Stream::Output).unwrap();
        chunks.iter().map(|c| dec.open(c)).collect()
    }

    #[test]
    fn round_trip_and_chain() {
        let chunks = encode(3, &[b"hello", &[0xff, 0x00, 0xc3], b"world"]);
        let bodies = decode(&chunks).unwrap();
        for (seq, (c, b)) in chunks.iter().zip(&bodies).enumerate() {
            assert_eq!(b.seq, seq as u64);
            assert_eq!(b.records, recs(&[b"hello", &[0xff, 0x00, 0xc3], b"world"]));
            assert_eq!(c.raw_len, 13);
            assert_eq!(c.last_us, 1000 * seq as u64 + 30);
        }
        verify_stream(&chunks).unwrap();

        let mut altered = chunks.clone();
        altered[1].blob[2] ^= 1;
        assert!(matches!(
            verify_stream(&altered),
            Err(ChunkError::Chain { seq: 1, .. })
        ));
        assert!(matches!(
            decode(&altered),
            Err(ChunkError::Chain { seq: 1, .. })
        ));
        let mut dropped = chunks.clone();
        dropped.remove(1);
        assert!(matches!(
            verify_stream(&dropped),
            Err(ChunkError::Chain { seq: 1, .. })
        ));
        assert!(decode(&dropped).is_err());
        let mut swapped = chunks.clone();
        swapped.swap(0, 1);
        assert!(verify_stream(&swapped).is_err());
    }

    #[test]
    fn later_chunks_refer_to_earlier_ones_and_the_level_adapts() {
        // Text repeats across chunks: the second chunk is tiny because it refers to the first.
        let line = b"2026-11-27T10:00:00Z host1 sshd[123]: connection accepted from 10.0.0.1\r\n";
        let text: Vec<u8> = line.iter().copied().cycle().take(60_000).collect();
        let chunks = encode(2, &[&text]);
        assert!(chunks[1].blob.len() < 200, "{}", chunks[1].blob.len());
        // Random bytes switch the stream to the fast level, then text brings it back.
        let mut enc = ChunkEncoder::new(Uuid::from_u128(7), Stream::Output, 7);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..60_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let mut all = Vec::new();
        for (seq, data) in [&noise, &noise, &text, &text].into_iter().enumerate() {
            all.push(enc.seal(seq as u64, recs(&[data])).unwrap());
            if seq == 0 {
                assert_eq!(enc.current, FAST_LEVEL);
            }
        }
        assert_eq!(enc.current, 7);
        let bodies = decode(&all).unwrap();
        assert_eq!(bodies[3].records[0].data, text);
        assert_eq!(bodies[1].records[0].data, noise);
    }

    #[test]
    fn hostile_blobs_are_errors_not_panics() {
        let c = encode(1, &[b"x"]).remove(0);
        for blob in [vec![], vec![0u8; 10], b"\x28\xb5\x2f\xfd garbage".to_vec()] {
            let mut bad = SealedChunk { blob, ..c.clone() };
            bad.hash = chain_hash(
                &chain_start(bad.recording, bad.stream),
                bad.recording,
                bad.stream,
                0,
                &bad.blob,
            );
            assert!(decode(&[bad]).is_err());
        }
        // A zstd bomb: 100 MiB of zeros compresses to a few KiB but must be refused.
        let bomb = zstd::bulk::compress(&vec![0u8; 100 << 20], 3).unwrap();
        let mut bad = SealedChunk {
            blob: bomb,
            ..c.clone()
        };
        bad.hash = chain_hash(
            &chain_start(bad.recording, bad.stream),
            bad.recording,
            bad.stream,
            0,
            &bad.blob,
        );
        assert!(matches!(decode(&[bad]), Err(ChunkError::Decompress { .. })));
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
