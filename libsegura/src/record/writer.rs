//! Cuts timed records into chunks (≤ 64 KiB of payload or ≤ 1 s), seals and chains them, and
//! hands each to a [`Sink`].

use uuid::Uuid;

use crate::chunk::{self, ChunkEncoder, Record, Stream, MAX_CHUNK_SPAN_US};
use crate::spool::{RecordingEnd, RecordingMeta, Spool, SpoolError};

/// Where sealed chunks go.
pub trait Sink: Send {
    fn begin(&mut self, meta: &RecordingMeta) -> Result<(), SpoolError>;
    fn chunk(&mut self, chunk: &chunk::SealedChunk) -> Result<(), SpoolError>;
    fn end(&mut self, id: Uuid, end: &RecordingEnd) -> Result<(), SpoolError>;
}

impl Sink for Spool {
    fn begin(&mut self, meta: &RecordingMeta) -> Result<(), SpoolError> {
        self.begin_recording(meta)
    }
    fn chunk(&mut self, c: &chunk::SealedChunk) -> Result<(), SpoolError> {
        self.append_chunk(c)
    }
    fn end(&mut self, id: Uuid, end: &RecordingEnd) -> Result<(), SpoolError> {
        self.end_recording(id, end)
    }
}

struct Open {
    first_us: u64,
    last_us: u64,
    bytes: usize,
    records: Vec<Record>,
}

/// Builds the chunks of one recording.
pub struct ChunkWriter<S: Sink> {
    sink: S,
    id: Uuid,
    open: [Option<Open>; 4],
    encoders: [ChunkEncoder; 4],
    /// Why recording stopped early, once it has.
    stopped: Option<String>,
}

impl<S: Sink> ChunkWriter<S> {
    /// Registers the recording with the sink and starts the chains.
    pub fn begin(mut sink: S, meta: &RecordingMeta, level: i32) -> Result<Self, SpoolError> {
        sink.begin(meta)?;
        let id = meta.id;
        Ok(ChunkWriter {
            sink,
            id,
            open: [None, None, None, None],
            encoders: Stream::ALL.map(|s| ChunkEncoder::new(id, s, level)),
            stopped: None,
        })
    }

    /// Why recording stopped early, if it did (then further data is dropped).
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Adds bytes seen at `t_us` (microseconds since the recording started) to a stream.
    pub fn push(&mut self, stream: Stream, t_us: u64, mut data: &[u8]) {
        if self.stopped.is_some() || data.is_empty() {
            return;
        }
        let i = stream as usize;
        if let Some(o) = &self.open[i] {
            if t_us.saturating_sub(o.first_us) >= MAX_CHUNK_SPAN_US {
                self.seal(stream);
            }
        }
        while !data.is_empty() {
            let o = self.open[i].get_or_insert_with(|| Open {
                first_us: t_us,
                last_us: t_us,
                bytes: 0,
                records: Vec::new(),
            });
            let limit = self.encoders[i].payload_target();
            let room = limit.saturating_sub(o.bytes);
            let take = room.min(data.len());
            o.records.push(Record {
                delay_us: t_us.saturating_sub(o.last_us),
                data: data[..take].to_vec(),
            });
            o.last_us = o.last_us.max(t_us);
            o.bytes += take;
            data = &data[take..];
            if o.bytes >= limit {
                self.seal(stream);
                if self.stopped.is_some() {
                    return;
                }
            } else {
                break;
            }
        }
    }

    /// When the oldest open chunk must be sealed (its first record plus one second).
    pub fn next_deadline(&self) -> Option<u64> {
        self.open
            .iter()
            .flatten()
            .map(|o| o.first_us + MAX_CHUNK_SPAN_US)
            .min()
    }

    /// Seals every chunk opened at least a second before `now_us`.
    pub fn flush_due(&mut self, now_us: u64) {
        for s in Stream::ALL {
            if matches!(&self.open[s as usize], Some(o) if o.first_us + MAX_CHUNK_SPAN_US <= now_us)
            {
                self.seal(s);
            }
        }
    }

    /// Seals every open chunk.
    pub fn flush_all(&mut self) {
        for s in Stream::ALL {
            self.seal(s);
        }
    }

    fn seal(&mut self, stream: Stream) {
        let i = stream as usize;
        let Some(o) = self.open[i].take() else {
            return;
        };
        if self.stopped.is_some() {
            return;
        }
        let result = self.encoders[i]
            .seal(o.first_us, o.records)
            .map_err(|e| e.to_string())
            .and_then(|sealed| self.sink.chunk(&sealed).map_err(|e| e.to_string()));
        if let Err(e) = result {
            self.stopped = Some(e);
        }
    }

    /// Seals what is open and ends the recording; returns the sink.
    pub fn finish(mut self, mut end: RecordingEnd) -> Result<S, SpoolError> {
        self.flush_all();
        if end.truncated.is_none() {
            end.truncated = self.stopped.take();
        }
        self.sink.end(self.id, &end)?;
        Ok(self.sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{
        verify_stream, ChunkDecoder, SealedChunk, MAX_CHUNK_PAYLOAD, MIN_CHUNK_PAYLOAD,
        TARGET_CHUNK_BYTES,
    };
    use crate::spool::{Mode, RecordingKind};

    #[derive(Default)]
    struct Collect {
        chunks: Vec<SealedChunk>,
        ended: Option<RecordingEnd>,
        fail_after: Option<usize>,
    }

    impl Sink for Collect {
        fn begin(&mut self, _: &RecordingMeta) -> Result<(), SpoolError> {
            Ok(())
        }
        fn chunk(&mut self, c: &SealedChunk) -> Result<(), SpoolError> {
            if self.fail_after == Some(self.chunks.len()) {
                return Err(SpoolError::QuotaExceeded {
                    path: "/s".into(),
                    used: 1,
                    max: 1,
                });
            }
            self.chunks.push(c.clone());
            Ok(())
        }
        fn end(&mut self, _: Uuid, end: &RecordingEnd) -> Result<(), SpoolError> {
            self.ended = Some(end.clone());
            Ok(())
        }
    }

    fn meta() -> RecordingMeta {
        RecordingMeta {
            id: Uuid::from_u128(1),
            login_id: None,
            kind: RecordingKind::Command,
            user: "u".into(),
            uid: 1,
            gid: 1,
            group: "g".into(),
            host: "h".into(),
            service: None,
            tty: None,
            rhost: None,
            command: vec![],
            cwd: None,
            term: None,
            mode: Mode::Pipe,
            cols: 80,
            rows: 24,
            rule: None,
            started_at: 0,
            recorder_pid: 1,
        }
    }

    fn output(chunks: &[SealedChunk]) -> (Vec<u8>, Vec<u64>) {
        let mut data = Vec::new();
        let mut times = Vec::new();
        let mut dec = ChunkDecoder::new(Uuid::from_u128(1), Stream::Output).unwrap();
        for c in chunks {
            for (t, d) in dec.open(c).unwrap().timed_records() {
                data.extend_from_slice(d);
                times.push(t);
            }
        }
        (data, times)
    }

    #[test]
    fn chunks_respect_size_and_time_limits_and_keep_every_byte() {
        let mut w = ChunkWriter::begin(Collect::default(), &meta(), 3).unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        w.push(Stream::Output, 10, &big);
        w.push(Stream::Output, 20, b"tail");
        w.push(Stream::Output, 1_500_000, b"late");
        w.push(Stream::Input, 1_600_000, b"typed");
        let sink = w
            .finish(RecordingEnd {
                ended_at: 5,
                exit_code: Some(0),
                ..Default::default()
            })
            .unwrap();
        let out: Vec<_> = sink
            .chunks
            .iter()
            .filter(|c| c.stream == Stream::Output)
            .cloned()
            .collect();
        verify_stream(&out).unwrap();
        let (data, times) = output(&out);
        let mut expected = big.clone();
        expected.extend_from_slice(b"taillate");
        assert_eq!(data, expected);
        assert!(out.iter().all(|c| c.raw_len as usize <= MAX_CHUNK_PAYLOAD));
        assert!(out.iter().all(|c| c.blob.len() <= TARGET_CHUNK_BYTES));
        // The first chunk assumes no compression; the data compresses well, so the next take more.
        assert!((MIN_CHUNK_PAYLOAD..TARGET_CHUNK_BYTES).contains(&(out[0].raw_len as usize)));
        assert!(out[1].raw_len > out[0].raw_len);
        assert!(out
            .iter()
            .all(|c| c.last_us - c.first_us < MAX_CHUNK_SPAN_US));
        assert_eq!(
            out.len(),
            3,
            "two chunks for 200004 bytes, then a new one after 1.5 s"
        );
        assert_eq!(*times.last().unwrap(), 1_500_000);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(sink.ended.unwrap().truncated, None);
    }

    #[test]
    fn sink_failure_stops_recording_and_marks_it_truncated() {
        let sink = Collect {
            fail_after: Some(1),
            ..Default::default()
        };
        let mut w = ChunkWriter::begin(sink, &meta(), 3).unwrap();
        w.push(Stream::Output, 0, &vec![b'x'; 3 * MAX_CHUNK_PAYLOAD]);
        assert!(w.stopped().unwrap().contains("quota"));
        w.push(Stream::Output, 5, b"dropped");
        let sink = w.finish(RecordingEnd::default()).unwrap();
        assert_eq!(sink.chunks.len(), 1);
        assert!(sink.ended.unwrap().truncated.unwrap().contains("quota"));
    }

    #[test]
    fn idle_chunks_are_flushed_by_deadline() {
        let mut w = ChunkWriter::begin(Collect::default(), &meta(), 3).unwrap();
        w.push(Stream::Output, 100, b"a");
        assert_eq!(w.next_deadline(), Some(1_000_100));
        w.flush_due(999_999);
        assert_eq!(w.sink.chunks.len(), 0);
        w.flush_due(1_000_100);
        assert_eq!(w.sink.chunks.len(), 1);
        assert_eq!(w.next_deadline(), None);
    }
}
