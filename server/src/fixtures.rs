//! Sample rows for the server's tests, examples and benchmarks (not used by the server itself).

use libsegura::spool::{Mode, RecordingKind, RecordingMeta, RecordingRow, RecordingState};
use uuid::Uuid;

/// A login shell's recording of user `alice` on `host`, as an agent PUTs it when it starts;
/// callers change what their case needs.
pub fn recording_row(id: Uuid, host: &str) -> RecordingRow {
    RecordingRow {
        meta: RecordingMeta {
            id,
            login_id: None,
            kind: RecordingKind::Session,
            user: "alice".into(),
            uid: 1000,
            gid: 1000,
            group: "alice".into(),
            host: host.into(),
            service: Some("sshd".into()),
            tty: Some("/dev/pts/3".into()),
            rhost: Some("10.0.0.9".into()),
            command: vec!["-bash".into()],
            cwd: Some("/home/alice".into()),
            term: Some("xterm-256color".into()),
            mode: Mode::Pty,
            cols: 80,
            rows: 24,
            rule: Some("r1".into()),
            started_at: 1_780_000_000_000_000,
            recorder_pid: 4242,
        },
        ended_at: None,
        exit_code: None,
        exit_signal: None,
        bytes_out: 0,
        bytes_in: 0,
        state: RecordingState::Recording,
        note: None,
        chunks: 0,
        chunks_pending_upload: 0,
        bytes_pending_upload: 0,
    }
}
