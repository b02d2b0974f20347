//! Evasion: each way a recorded user without privilege was found to escape, blind or subvert the
//! recording, performed for real (real users, real `su`, a real sshd on 127.0.0.1, the real
//! `/usr/bin/ping` wrapped), with what must happen instead. Runs as root; undoes everything.
//! docs/security.md names the test that keeps each mechanism true.

/// Filling the spool: quota shares, uploaded chunks evicted first, the platform told.
#[path = "evasion/spool.rs"]
mod spool;
