//! What the upload agent and the platform exchange (`/api/v1`). JSON for control messages,
//! postcard for chunk batches. Shared by both sides so they cannot drift apart.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chunk::{SealedChunk, Stream};
use crate::spool::{AuditEvent, LoginRow, RecordingRow};

/// Version prefix of every endpoint.
pub const API: &str = "/api/v1";
/// Content type of a postcard-encoded [`ChunkBatch`].
pub const CHUNKS_CONTENT_TYPE: &str = "application/x-segura-chunks";
/// Largest request body the platform accepts.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Most chunks in one batch.
pub const MAX_BATCH_CHUNKS: usize = 512;

/// `POST /api/v1/enroll`: a one-time token for a per-host credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub token: String,
    pub hostname: String,
}

/// The answer to an enrollment: send `Authorization: Bearer {host_id}.{secret}` from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    pub host_id: Uuid,
    pub secret: String,
}

/// `GET /api/v1/policy` (with `ETag` / `If-None-Match`): the rules for this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyBundle {
    /// Increases with every change on the platform.
    pub version: u64,
    pub rules: Vec<crate::policy::Rule>,
}

/// `PUT /api/v1/logins/{id}`: idempotent on the id.
pub type LoginUpload = LoginRow;

/// `PUT /api/v1/recordings/{id}`: idempotent on the id (later PUTs update the end fields).
pub type RecordingUpload = RecordingRow;

/// One chunk on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireChunk {
    pub stream: u8,
    pub seq: u64,
    pub first_us: u64,
    pub last_us: u64,
    pub raw_len: u64,
    pub hash: [u8; 32],
    #[serde(with = "serde_bytes")]
    pub blob: Vec<u8>,
}

impl WireChunk {
    pub fn from_sealed(c: &SealedChunk) -> WireChunk {
        WireChunk {
            stream: c.stream as u8,
            seq: c.seq,
            first_us: c.first_us,
            last_us: c.last_us,
            raw_len: c.raw_len,
            hash: c.hash,
            blob: c.blob.clone(),
        }
    }

    pub fn into_sealed(self, recording: Uuid) -> Result<SealedChunk, crate::chunk::ChunkError> {
        Ok(SealedChunk {
            recording,
            stream: Stream::from_u8(self.stream)?,
            seq: self.seq,
            first_us: self.first_us,
            last_us: self.last_us,
            raw_len: self.raw_len,
            blob: self.blob,
            hash: self.hash,
        })
    }
}

/// `POST /api/v1/recordings/{id}/chunks` (postcard): chunks of one recording, any streams, in
/// seq order within each stream. Idempotent on (recording, stream, seq); the chain is verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkBatch {
    pub chunks: Vec<WireChunk>,
}

impl ChunkBatch {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }
    pub fn decode(bytes: &[u8]) -> Result<ChunkBatch, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// The platform's answer to a batch, and to `GET /api/v1/recordings/{id}/acks`: for each stream
/// (by number), how many chunks it holds contiguously from seq 0 (so `n` means seqs 0..n).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acks {
    pub recording: Uuid,
    pub streams: std::collections::BTreeMap<u8, u64>,
}

/// `POST /api/v1/audit`: idempotent on each event's id.
pub type AuditUpload = Vec<AuditEvent>;

/// `PUT /api/v1/report`: what the agent still has to upload, sent at the end of each sync, for
/// the platform's Hosts page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    pub pending_recordings: u64,
    pub pending_bytes: u64,
}

/// Every error answer: a status code and this body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip() {
        let b = ChunkBatch {
            chunks: vec![WireChunk {
                stream: 0,
                seq: 3,
                first_us: 1,
                last_us: 2,
                raw_len: 5,
                hash: [7; 32],
                blob: vec![1, 2, 3],
            }],
        };
        assert_eq!(ChunkBatch::decode(&b.encode()).unwrap(), b);
        assert!(ChunkBatch::decode(b"\xff\xff\xff").is_err());
    }
}
