//! The rules a chunk batch must follow, independent of the storage backend.
//!
//! Within a stream the store holds chunks contiguously from seq 0. A chunk in a batch is
//! - a duplicate (its seq is already held with the same hash): accepted, nothing stored;
//! - a conflict (held with another hash): refused (409);
//! - beyond the held prefix (a gap): refused (409);
//! - the next one: its hash must chain onto the previous chunk's (or [`chain_start`]), else the
//!   batch is refused (422).
//!
//! The caller runs [`apply`] inside one transaction and rolls it back on any error, so a batch
//! is stored whole or not at all.

use libsegura::chunk::{chain_hash, chain_start, SealedChunk, Stream};

use crate::store::StoreError;

/// The last chunk held of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// What [`apply`] needs from a transaction of the backend.
pub trait ChunkTx {
    /// The last chunk held of `stream`, if any.
    fn head(&mut self, stream: Stream) -> Result<Option<Head>, StoreError>;
    /// The hash of the held chunk `seq` of `stream`.
    fn hash_at(&mut self, stream: Stream, seq: u64) -> Result<Option<[u8; 32]>, StoreError>;
    /// Stores a chunk that [`apply`] checked.
    fn insert(&mut self, chunk: &SealedChunk) -> Result<(), StoreError>;
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stored: u64,
    /// Payload bytes of the chunks stored.
    pub stored_raw: u64,
    pub duplicates: u64,
}

/// Largest value the store keeps in a signed 64-bit column.
const MAX_STORED: u64 = i64::MAX as u64;

/// Checks and stores a batch (the chunks of one recording, any streams).
pub fn apply(tx: &mut impl ChunkTx, chunks: &[SealedChunk]) -> Result<Outcome, StoreError> {
    // Per stream: the number of chunks held and the hash of the last, loaded on first use.
    let mut heads: [Option<(u64, [u8; 32])>; Stream::ALL.len()] = [None; Stream::ALL.len()];
    let mut out = Outcome::default();
    for c in chunks {
        let (stream, seq) = (c.stream as u8, c.seq);
        check_fields(c)?;
        let slot = &mut heads[usize::from(stream)];
        let (held, prev) = match *slot {
            Some(h) => h,
            None => {
                let h = match tx.head(c.stream)? {
                    Some(head) => (head.seq + 1, head.hash),
                    None => (0, chain_start(c.recording, c.stream)),
                };
                *slot = Some(h);
                h
            }
        };
        if seq < held {
            match tx.hash_at(c.stream, seq)? {
                Some(h) if h == c.hash => {
                    out.duplicates += 1;
                    continue;
                }
                Some(_) => {
                    return Err(StoreError::Conflict(format!(
                        "stream {stream} seq {seq} is already stored with a different hash"
                    )))
                }
                // Held counts say it is there; a missing row is damage, not the client's fault.
                None => {
                    return Err(StoreError::Corrupt {
                        what: format!("chunk {} stream {stream} seq {seq}", c.recording),
                        detail: "missing below the held count".into(),
                    })
                }
            }
        }
        if seq > held {
            return Err(StoreError::Conflict(format!(
                "gap in stream {stream}: {held} chunks held (seqs 0..{held}), got seq {seq}; \
                 send seq {held} first"
            )));
        }
        if chain_hash(&prev, c.recording, c.stream, seq, &c.blob) != c.hash {
            return Err(StoreError::ChainBroken { stream, seq });
        }
        tx.insert(c)?;
        *slot = Some((held + 1, c.hash));
        out.stored += 1;
        out.stored_raw = out.stored_raw.saturating_add(c.raw_len);
    }
    Ok(out)
}

/// Fields the store keeps as signed 64-bit numbers, and their order.
fn check_fields(c: &SealedChunk) -> Result<(), StoreError> {
    let (stream, seq) = (c.stream as u8, c.seq);
    for (name, v) in [
        ("seq", c.seq),
        ("first_us", c.first_us),
        ("last_us", c.last_us),
        ("raw_len", c.raw_len),
    ] {
        if v > MAX_STORED {
            return Err(StoreError::Invalid(format!(
                "stream {stream} seq {seq}: {name} {v} is out of range"
            )));
        }
    }
    if c.last_us < c.first_us {
        return Err(StoreError::Invalid(format!(
            "stream {stream} seq {seq}: last_us {} is before first_us {}",
            c.last_us, c.first_us
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use libsegura::chunk::{ChunkEncoder, Record};
    use uuid::Uuid;

    use super::*;

    /// A transaction over an in-memory map: what a backend's transaction holds.
    #[derive(Default, Clone)]
    struct MemTx(BTreeMap<(u8, u64), [u8; 32]>);

    impl ChunkTx for MemTx {
        fn head(&mut self, stream: Stream) -> Result<Option<Head>, StoreError> {
            Ok(self
                .0
                .range((stream as u8, 0)..=(stream as u8, u64::MAX))
                .next_back()
                .map(|(&(_, seq), &hash)| Head { seq, hash }))
        }
        fn hash_at(&mut self, stream: Stream, seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
            Ok(self.0.get(&(stream as u8, seq)).copied())
        }
        fn insert(&mut self, c: &SealedChunk) -> Result<(), StoreError> {
            self.0.insert((c.stream as u8, c.seq), c.hash);
            Ok(())
        }
    }

    fn chunks(stream: Stream, n: u64) -> Vec<SealedChunk> {
        let mut enc = ChunkEncoder::new(Uuid::from_u128(9), stream, 3);
        (0..n)
            .map(|i| {
                enc.seal(
                    i * 1000,
                    vec![Record {
                        delay_us: 5,
                        data: format!("chunk {i}").into_bytes(),
                    }],
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn batches_extend_duplicates_pass_conflicts_and_gaps_do_not() {
        let out = chunks(Stream::Output, 4);
        let inp = chunks(Stream::Input, 2);
        let mut tx = MemTx::default();
        let r = apply(&mut tx, &[out[0].clone(), inp[0].clone(), out[1].clone()]).unwrap();
        assert_eq!(
            r,
            Outcome {
                stored: 3,
                stored_raw: out[0].raw_len + inp[0].raw_len + out[1].raw_len,
                duplicates: 0
            }
        );
        // Overlap: 1 again, then 2 and 3; a duplicate inside the same batch is fine too.
        let r = apply(
            &mut tx,
            &[
                out[1].clone(),
                out[2].clone(),
                out[2].clone(),
                out[3].clone(),
            ],
        )
        .unwrap();
        assert_eq!(
            r,
            Outcome {
                stored: 2,
                stored_raw: out[2].raw_len + out[3].raw_len,
                duplicates: 2
            }
        );
        assert_eq!(tx.0.len(), 5);

        let mut other = out[1].clone();
        other.hash[0] ^= 1;
        assert!(matches!(
            apply(&mut tx.clone(), &[other]),
            Err(StoreError::Conflict(m)) if m.contains("different hash")
        ));
        assert!(matches!(
            apply(&mut tx.clone(), &[inp[1].clone(), chunks(Stream::Input, 4)[3].clone()]),
            Err(StoreError::Conflict(m)) if m.contains("gap in stream 1")
        ));
    }

    #[test]
    fn an_altered_blob_or_a_chunk_of_another_chain_breaks_the_chain() {
        let out = chunks(Stream::Output, 3);
        let mut altered = out[1].clone();
        altered.blob.push(0);
        let mut tx = MemTx::default();
        assert!(matches!(
            apply(&mut tx, &[out[0].clone(), altered]),
            Err(StoreError::ChainBroken { stream: 0, seq: 1 })
        ));
        // A stream's chain starts from the recording and the stream: another stream's first
        // chunk does not fit.
        let mut moved = chunks(Stream::Events, 1).remove(0);
        moved.stream = Stream::Stderr;
        assert!(matches!(
            apply(&mut MemTx::default(), &[moved]),
            Err(StoreError::ChainBroken { stream: 3, seq: 0 })
        ));
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        let mut c = chunks(Stream::Output, 1).remove(0);
        c.raw_len = u64::MAX;
        assert!(matches!(
            apply(&mut MemTx::default(), &[c]),
            Err(StoreError::Invalid(m)) if m.contains("raw_len")
        ));
        let mut c = chunks(Stream::Output, 1).remove(0);
        c.first_us = c.last_us + 1;
        assert!(matches!(
            apply(&mut MemTx::default(), &[c]),
            Err(StoreError::Invalid(m)) if m.contains("before first_us")
        ));
    }
}
