//! The recorder: runs a program, relays its terminal (or its pipes) and records everything.
//!
//! - **pty mode** (stdin is a terminal): a new pty whose settings and size are copied from the
//!   outer terminal; the outer terminal is put in raw mode for the duration; resizes (SIGWINCH)
//!   are passed in and recorded; the program leads a new session on the pty, so job control and
//!   terminal signals work inside.
//! - **pipe mode** (stdin is not a terminal): stdin, stdout and stderr are relayed separately and
//!   recorded; after stdin reaches EOF every output is drained to its end.
//!
//! The relay runs on the calling thread and does nothing but relay and timestamp; a writer thread
//! cuts chunks, compresses, hashes and commits them ([`writer::ChunkWriter`]), so recording never
//! sits between a keystroke and its echo.

pub mod sys;
pub mod writer;

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use nix::unistd::Pid;
use uuid::Uuid;

use crate::chunk::{Event, Stream};
use crate::spool::{Mode, RecordingEnd, RecordingMeta, SpoolError};
use sys::Size;
pub use writer::{ChunkWriter, Sink};

/// Relay buffer size, and the batch size at which the relay hands data to the writer.
const BUF: usize = 64 * 1024;
/// The relay hands its batch to the writer at least this often while data flows.
const BATCH_INTERVAL: Duration = Duration::from_millis(50);
/// After the program exits, how long to wait for output from processes it left behind.
const LINGER: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("recorder: {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("recorder: the writer thread failed")]
    Writer,
}

fn io_err(what: &'static str) -> impl FnOnce(nix::Error) -> RecordError {
    move |e| RecordError::Io {
        what,
        source: e.into(),
    }
}

/// What to run and what to keep.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The program (looked up in PATH like a shell does).
    pub program: OsString,
    pub args: Vec<OsString>,
    /// argv[0] when it differs from the program (e.g. `-bash` for a login shell).
    pub argv0: Option<OsString>,
    /// Record what is typed.
    pub record_input: bool,
    /// Also record typed input while the terminal does not echo (passwords).
    pub hidden_input: bool,
    /// Shown (and recorded) when recording starts.
    pub notice: Option<String>,
    pub compression_level: i32,
    /// Force a mode; by default pty mode when stdin is a terminal.
    pub mode: Option<Mode>,
    /// Store what flows (output, input, stderr); `false` only counts it (file transfers are
    /// audited, not recorded, unless a rule asks).
    pub keep_data: bool,
    /// Run the program as this (uid, gid): a setuid recorder drops its privilege for it.
    pub run_as: Option<(u32, u32)>,
}

impl RecordOptions {
    pub fn new(program: impl Into<OsString>, args: Vec<OsString>) -> Self {
        RecordOptions {
            program: program.into(),
            args,
            argv0: None,
            record_input: true,
            hidden_input: false,
            notice: None,
            compression_level: 3,
            mode: None,
            keep_data: true,
            run_as: None,
        }
    }

    /// Applies the `[record]` configuration.
    pub fn with_config(mut self, c: &crate::config::RecordConfig) -> Self {
        self.record_input = c.input;
        self.hidden_input = c.hidden_input;
        self.notice = c.notice.clone().filter(|n| !n.is_empty());
        self.compression_level = c.compression_level;
        self
    }
}

/// How a recorded program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: Uuid,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    /// Why recording stopped before the program ended, if it did.
    pub truncated: Option<String>,
    /// Bytes that flowed: output and stderr, and input.
    pub bytes_out: u64,
    pub bytes_in: u64,
}

impl Outcome {
    /// Ends this process the same way the program ended.
    pub fn exit(&self) -> ! {
        sys::exit_like(self.exit_code, self.exit_signal)
    }
}

struct Ev {
    t_us: u64,
    stream: Stream,
    data: Vec<u8>,
}

enum Msg {
    Batch(Vec<Ev>),
    End(RecordingEnd),
}

/// Collects timed events on the relay side and hands them to the writer in batches.
struct Batcher {
    start: Instant,
    tx: SyncSender<Msg>,
    batch: Vec<Ev>,
    bytes: usize,
    since: Option<Instant>,
    keep_data: bool,
    /// Bytes seen per stream.
    seen: [u64; 4],
}

impl Batcher {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn push(&mut self, stream: Stream, data: &[u8]) {
        self.seen[stream as usize] += data.len() as u64;
        if !self.keep_data && stream != Stream::Events {
            return;
        }
        let t_us = self.now_us();
        self.batch.push(Ev {
            t_us,
            stream,
            data: data.to_vec(),
        });
        self.bytes += data.len();
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
        if self.bytes >= BUF {
            self.flush();
        }
    }

    fn event(&mut self, e: &Event) {
        self.push(Stream::Events, &e.encode());
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            // A send fails only when the writer is gone; its error is reported at the end.
            let _ = self.tx.send(Msg::Batch(std::mem::take(&mut self.batch)));
        }
        self.bytes = 0;
        self.since = None;
    }

    /// How long poll may sleep before the batch is due.
    fn timeout(&mut self, cap: Option<Duration>) -> PollTimeout {
        let due = self
            .since
            .map(|s| BATCH_INTERVAL.saturating_sub(s.elapsed()));
        if due == Some(Duration::ZERO) {
            self.flush();
        }
        let due = self
            .since
            .map(|s| BATCH_INTERVAL.saturating_sub(s.elapsed()));
        match due.into_iter().chain(cap).min() {
            None => PollTimeout::NONE,
            Some(d) => {
                PollTimeout::try_from(d.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX)
            }
        }
    }
}

fn writer_loop<S: Sink>(
    rx: Receiver<Msg>,
    mut w: ChunkWriter<S>,
    start: Instant,
    stopped: Arc<Mutex<Option<String>>>,
) -> Result<S, SpoolError> {
    let now = || start.elapsed().as_micros() as u64;
    loop {
        let msg = match w.next_deadline() {
            Some(d) => rx.recv_timeout(Duration::from_micros(d.saturating_sub(now()))),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Msg::Batch(evs)) => {
                for ev in evs {
                    w.push(ev.stream, ev.t_us, &ev.data);
                }
            }
            Ok(Msg::End(end)) => return w.finish(end),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return w.finish(RecordingEnd {
                    ended_at: crate::time::now_us(),
                    truncated: Some("the recorder stopped unexpectedly".into()),
                    ..Default::default()
                })
            }
        }
        w.flush_due(now());
        if let Some(why) = w.stopped() {
            let mut s = stopped.lock().unwrap_or_else(|p| p.into_inner());
            if s.is_none() {
                *s = Some(why.to_string());
            }
        }
    }
}

/// Records `opts.program` into `sink`. `meta` names the recording; its mode, size, start time
/// and recorder pid are filled in here. Returns how the program ended, and the sink.
pub fn record<S: Sink + 'static>(
    opts: &RecordOptions,
    mut meta: RecordingMeta,
    sink: S,
) -> Result<(Outcome, S), RecordError> {
    let stdin = sys::std_fd(0);
    let outer: Option<Termios> = match opts.mode {
        Some(Mode::Pipe) => None,
        _ if !nix::unistd::isatty(stdin).unwrap_or(false) => None,
        _ => termios::tcgetattr(stdin).ok(),
    };
    let size = sys::window_size(stdin).unwrap_or(Size { cols: 80, rows: 24 });
    meta.mode = if outer.is_some() {
        Mode::Pty
    } else {
        Mode::Pipe
    };
    meta.cols = size.cols;
    meta.rows = size.rows;
    meta.started_at = crate::time::now_us();
    meta.recorder_pid = std::process::id();
    let id = meta.id;

    // Signals arrive on a descriptor the relay polls. Blocked before the writer thread starts,
    // so no thread takes them; the child gets a clean mask from std.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGWINCH,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGCONT,
    ] {
        mask.add(s);
    }
    let old_mask = mask
        .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
        .map_err(io_err("blocking signals"))?;
    let result = (|| {
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(io_err("signalfd"))?;
        let writer = ChunkWriter::begin(sink, &meta, opts.compression_level)?;
        let start = Instant::now();
        let (tx, rx) = sync_channel::<Msg>(32);
        let stopped = Arc::new(Mutex::new(None));
        let stopped2 = Arc::clone(&stopped);
        let handle = std::thread::Builder::new()
            .name("segura-writer".into())
            .spawn(move || writer_loop(rx, writer, start, stopped2))
            .map_err(|source| RecordError::Io {
                what: "starting the writer thread",
                source,
            })?;
        let mut batcher = Batcher {
            start,
            tx,
            batch: Vec::new(),
            bytes: 0,
            since: None,
            keep_data: opts.keep_data,
            seen: [0; 4],
        };
        let relayed = match outer {
            Some(outer) => relay_pty(opts, &outer, size, &sigfd, &mut batcher, &stopped),
            None => relay_pipes(opts, &sigfd, &mut batcher, &stopped),
        };
        batcher.flush();
        let seen = batcher.seen;
        let mut end = RecordingEnd {
            ended_at: crate::time::now_us(),
            ..Default::default()
        };
        match &relayed {
            Ok(status) => {
                end.exit_code = status.code();
                end.exit_signal = status.signal();
            }
            Err(e) => end.truncated = Some(format!("recording failed: {e}")),
        }
        let _ = batcher.tx.send(Msg::End(end.clone()));
        drop(batcher);
        let sink = handle.join().map_err(|_| RecordError::Writer)??;
        let status = relayed?;
        let truncated = stopped.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Drain signals that arrived at the very end so restoring the mask does not act on them.
        while let Ok(Some(_)) = sigfd.read_signal() {}
        Ok((
            Outcome {
                id,
                exit_code: status.code(),
                exit_signal: status.signal(),
                truncated,
                bytes_out: seen[Stream::Output as usize] + seen[Stream::Stderr as usize],
                bytes_in: seen[Stream::Input as usize],
            },
            sink,
        ))
    })();
    let _ = old_mask.thread_set_mask();
    result
}

fn command(opts: &RecordOptions) -> Command {
    let mut cmd = Command::new(&opts.program);
    cmd.args(&opts.args);
    if let Some(a0) = &opts.argv0 {
        cmd.arg0(a0);
    }
    sys::unblock_signals_on_exec(&mut cmd);
    if let Some((uid, gid)) = opts.run_as {
        sys::drop_privileges_on_exec(&mut cmd, uid, gid);
    }
    cmd
}

fn spawn_error(opts: &RecordOptions, source: std::io::Error) -> RecordError {
    RecordError::Spawn {
        program: opts.program.to_string_lossy().into_owned(),
        source,
    }
}

/// Puts the outer terminal in raw mode and restores it when dropped.
struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'static>, saved: &Termios) -> nix::Result<RawMode> {
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw)?;
        Ok(RawMode {
            fd,
            saved: saved.clone(),
        })
    }

    fn reapply(&self) {
        let mut raw = self.saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(self.fd, SetArg::TCSADRAIN, &raw);
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// Forwards a signal the recorder received to the program, unless the terminal sent it to the
/// whole process group (then the program got it too).
fn forward(child: &Child, info: &libc::signalfd_siginfo) {
    const SI_KERNEL: i32 = 0x80;
    let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
        return;
    };
    if matches!(sig, Signal::SIGINT | Signal::SIGQUIT) && info.ssi_code == SI_KERNEL {
        return;
    }
    let _ = kill(Pid::from_raw(child.id() as i32), sig);
}

fn poll_fds(fds: &mut [PollFd], timeout: PollTimeout) -> Result<(), RecordError> {
    match poll(fds, timeout) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(io_err("poll")(e)),
    }
}

fn ready(fd: &PollFd) -> bool {
    fd.revents().is_some_and(|r| {
        r.intersects(
            PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL,
        )
    })
}

fn writable(fd: &PollFd) -> bool {
    fd.revents().is_some_and(|r| {
        r.intersects(
            PollFlags::POLLOUT | PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL,
        )
    })
}

fn quota_message(stopped: &Mutex<Option<String>>, shown: &mut bool) -> Option<String> {
    if *shown {
        return None;
    }
    let s = stopped.lock().unwrap_or_else(|p| p.into_inner());
    let why = s.as_ref()?;
    *shown = true;
    Some(format!(
        "segura: recording stopped ({why}); the session continues unrecorded"
    ))
}

fn relay_pty(
    opts: &RecordOptions,
    outer: &Termios,
    size: Size,
    sigfd: &SignalFd,
    b: &mut Batcher,
    stopped: &Mutex<Option<String>>,
) -> Result<ExitStatus, RecordError> {
    let (stdin, stdout) = (sys::std_fd(0), sys::std_fd(1));
    let (master, slave) = sys::open_pty(size, Some(outer)).map_err(|source| RecordError::Io {
        what: "opening a pty",
        source,
    })?;
    sys::set_nonblocking(master.as_fd()).map_err(|source| RecordError::Io {
        what: "fcntl",
        source,
    })?;
    let mut child =
        sys::spawn_on_pty(&mut command(opts), &slave).map_err(|e| spawn_error(opts, e))?;
    // Our copy of the slave tells whether the program's terminal echoes; closed once it exits.
    let mut slave: Option<OwnedFd> = Some(slave);
    let raw = RawMode::enter(stdin, outer).ok();
    if let Some(notice) = &opts.notice {
        let _ = sys::write_all(stdout, format!("{notice}\r\n").as_bytes());
        b.event(&Event::Notice(notice.clone()));
    }

    let mut buf = vec![0u8; BUF];
    let mut pending: Vec<u8> = Vec::new(); // typed, not yet accepted by the pty
    let mut stdin_open = true;
    let mut stdout_open = true;
    let mut master_open = true;
    let mut status: Option<ExitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut hidden = false;
    let mut quota_shown = false;
    let mut size = size;

    while master_open {
        let linger = exited_at.map(|t| LINGER.saturating_sub(t.elapsed()));
        if linger == Some(Duration::ZERO) {
            break; // output from leftover background processes is not waited for forever
        }
        let mut master_ev = PollFlags::POLLIN;
        if !pending.is_empty() {
            master_ev |= PollFlags::POLLOUT;
        }
        let mut fds = vec![
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(master.as_fd(), master_ev),
        ];
        let want_stdin = stdin_open && pending.len() < BUF;
        if want_stdin {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        let timeout = b.timeout(linger);
        poll_fds(&mut fds, timeout)?;
        let sig_ready = ready(&fds[0]);
        let master_readable = ready(&fds[1]);
        let master_writable = writable(&fds[1]) && !pending.is_empty();
        let stdin_ready = want_stdin && ready(&fds[2]);
        drop(fds);

        if master_readable {
            // One read, one write: relaying each piece at once keeps the program and the outer
            // terminal flowing (gathering several reads into one write measured slower).
            match sys::read(&master, &mut buf) {
                Ok(0) => master_open = false,
                Ok(n) => {
                    if stdout_open && sys::write_all(stdout, &buf[..n]).is_err() {
                        stdout_open = false;
                        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP);
                    }
                    b.push(Stream::Output, &buf[..n]);
                    if exited_at.is_some() {
                        exited_at = Some(Instant::now());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => master_open = false, // EIO: every slave descriptor is closed
            }
        }
        if stdin_ready {
            match sys::read(stdin, &mut buf) {
                Ok(0) | Err(_) => {
                    // The outer terminal hung up.
                    stdin_open = false;
                    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP);
                }
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    write_pending(&master, &mut pending);
                    let echo_off = slave.as_ref().is_some_and(|s| {
                        termios::tcgetattr(s).is_ok_and(|t| {
                            !t.local_flags.contains(LocalFlags::ECHO)
                                && t.local_flags.contains(LocalFlags::ICANON)
                        })
                    });
                    if echo_off && !opts.hidden_input {
                        if !hidden {
                            b.event(&Event::HiddenInput);
                            hidden = true;
                        }
                    } else {
                        hidden = false;
                        if opts.record_input {
                            b.push(Stream::Input, &buf[..n]);
                        }
                    }
                }
            }
        } else if master_writable {
            write_pending(&master, &mut pending);
        }
        if sig_ready {
            while let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {
                        if status.is_none() {
                            if let Ok(Some(st)) = child.try_wait() {
                                status = Some(st);
                                exited_at = Some(Instant::now());
                                slave = None; // now the master reads EIO once output is drained
                            }
                        }
                    }
                    Ok(Signal::SIGWINCH) => resize(stdin, &master, &mut size, b),
                    Ok(Signal::SIGCONT) => {
                        if let Some(raw) = &raw {
                            raw.reapply();
                        }
                        resize(stdin, &master, &mut size, b);
                    }
                    Ok(_) => forward(&child, &info),
                    Err(_) => {}
                }
            }
        }
        if let Some(msg) = quota_message(stopped, &mut quota_shown) {
            if stdout_open {
                let _ = sys::write_all(stdout, format!("\r\n{msg}\r\n").as_bytes());
            }
        }
    }
    drop(master);
    let status = match status {
        Some(s) => s,
        None => child.wait().map_err(|source| RecordError::Io {
            what: "waiting for the program",
            source,
        })?,
    };
    drop(raw);
    Ok(status)
}

fn write_pending(fd: &OwnedFd, pending: &mut Vec<u8>) {
    match nix::unistd::write(fd, pending) {
        Ok(n) => {
            pending.drain(..n);
        }
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
        Err(_) => pending.clear(), // the program's side is gone; nothing will read it
    }
}

fn resize(stdin: BorrowedFd, master: &OwnedFd, size: &mut Size, b: &mut Batcher) {
    if let Some(new) = sys::window_size(stdin) {
        if new != *size {
            *size = new;
            let _ = sys::set_window_size(master.as_fd(), new);
            b.event(&Event::Resize {
                cols: new.cols,
                rows: new.rows,
            });
        }
    }
}

fn relay_pipes(
    opts: &RecordOptions,
    sigfd: &SignalFd,
    b: &mut Batcher,
    stopped: &Mutex<Option<String>>,
) -> Result<ExitStatus, RecordError> {
    let (stdin, stdout, stderr) = (sys::std_fd(0), sys::std_fd(1), sys::std_fd(2));
    let mut child = command(opts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(opts, e))?;
    let to_fd = |o: Option<OwnedFd>| -> Result<Option<OwnedFd>, RecordError> {
        if let Some(fd) = &o {
            sys::set_nonblocking(fd.as_fd()).map_err(|source| RecordError::Io {
                what: "fcntl",
                source,
            })?;
        }
        Ok(o)
    };
    let mut child_in = to_fd(child.stdin.take().map(OwnedFd::from))?;
    let mut child_out = to_fd(child.stdout.take().map(OwnedFd::from))?;
    let mut child_err = to_fd(child.stderr.take().map(OwnedFd::from))?;
    if let Some(notice) = &opts.notice {
        let _ = sys::write_all(stderr, format!("{notice}\n").as_bytes());
        b.event(&Event::Notice(notice.clone()));
    }

    let mut buf = vec![0u8; BUF];
    let mut pending: Vec<u8> = Vec::new();
    let mut stdin_open = true;
    let mut status: Option<ExitStatus> = None;
    let mut quota_shown = false;

    while status.is_none() || child_out.is_some() || child_err.is_some() {
        if status.is_some() {
            stdin_open = false; // nobody is left to read it
            pending.clear();
            child_in = None;
        }
        if !stdin_open && pending.is_empty() {
            child_in = None; // EOF for the program
        }
        let mut fds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        let mut slots = [None; 4]; // stdin, child_out, child_err, child_in
        let want_stdin = stdin_open && pending.len() < BUF && child_in.is_some();
        if want_stdin {
            slots[0] = Some(fds.len());
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        if let Some(fd) = &child_out {
            slots[1] = Some(fds.len());
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(fd) = &child_err {
            slots[2] = Some(fds.len());
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        if let (Some(fd), false) = (&child_in, pending.is_empty()) {
            slots[3] = Some(fds.len());
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
        }
        let timeout = b.timeout(None);
        poll_fds(&mut fds, timeout)?;
        let is = |slot: Option<usize>, f: fn(&PollFd) -> bool| slot.is_some_and(|i| f(&fds[i]));
        let (sig_ready, in_ready, out_ready, err_ready, cin_ready) = (
            ready(&fds[0]),
            is(slots[0], ready),
            is(slots[1], ready),
            is(slots[2], ready),
            is(slots[3], writable),
        );
        drop(fds);

        for (ready, src, dst, stream) in [
            (out_ready, &mut child_out, stdout, Stream::Output),
            (err_ready, &mut child_err, stderr, Stream::Stderr),
        ] {
            if !ready {
                continue;
            }
            let Some(fd) = src.as_ref() else { continue };
            match sys::read(fd, &mut buf) {
                Ok(0) => *src = None,
                Ok(n) => {
                    b.push(stream, &buf[..n]);
                    if sys::write_all(dst, &buf[..n]).is_err() {
                        // Our reader is gone: let the program see that too (EPIPE/SIGPIPE).
                        *src = None;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => *src = None,
            }
        }
        if in_ready {
            match sys::read(stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    if opts.record_input {
                        b.push(Stream::Input, &buf[..n]);
                    }
                }
            }
        }
        if (in_ready || cin_ready) && !pending.is_empty() {
            if let Some(fd) = &child_in {
                match nix::unistd::write(fd, &pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                    Err(_) => {
                        // The program closed its stdin: stop feeding it.
                        pending.clear();
                        stdin_open = false;
                    }
                }
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {
                        if status.is_none() {
                            status = child.try_wait().ok().flatten();
                        }
                    }
                    Ok(Signal::SIGWINCH | Signal::SIGCONT) => {}
                    Ok(_) => forward(&child, &info),
                    Err(_) => {}
                }
            }
        }
        if let Some(msg) = quota_message(stopped, &mut quota_shown) {
            let _ = sys::write_all(stderr, format!("{msg}\n").as_bytes());
        }
    }
    match status {
        Some(s) => Ok(s),
        None => child.wait().map_err(|source| RecordError::Io {
            what: "waiting for the program",
            source,
        }),
    }
}
