//! The thin layer of terminal and process syscalls the recorder needs. All of segura's `unsafe`
//! outside the PAM and C ABI edges lives here, each block with its justification.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

/// A terminal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

/// The window size of the terminal `fd`, if it is one.
pub fn window_size(fd: BorrowedFd) -> Option<Size> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to a live,
    // properly aligned local of that type; `fd` is a valid open descriptor for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some(Size {
        cols: ws.ws_col,
        rows: ws.ws_row,
    })
}

/// Sets the window size of the terminal `fd` (the kernel then signals SIGWINCH inside).
pub fn set_window_size(fd: BorrowedFd, size: Size) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ only reads one `struct winsize` from the pointer, which points to a live
    // local of that type; `fd` is valid for the duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens a new pty pair, both ends close-on-exec from the start (no other thread's fork can
/// inherit them), with the given settings and size on the slave.
pub fn open_pty(
    size: Size,
    settings: Option<&nix::sys::termios::Termios>,
) -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&name)?
        .into();
    if let Some(t) = settings {
        nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, t)?;
    }
    set_window_size(slave.as_fd(), size)?;
    // SAFETY: into_raw_fd gives up PtyMaster's ownership of a valid, open descriptor; the OwnedFd
    // is its only owner from here on.
    let master = unsafe { OwnedFd::from_raw_fd(master.into_raw_fd()) };
    Ok((master, slave))
}

/// Marks `fd` close-on-exec.
pub fn set_cloexec(fd: BorrowedFd) -> io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// Puts `fd` in non-blocking mode (only for descriptors this process created).
pub fn set_nonblocking(fd: BorrowedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Makes `cmd` start with no blocked signals. The recorder blocks the signals it reads from a
/// signalfd, and a blocked mask survives fork and exec: without this the program could not be
/// interrupted or terminated.
pub fn unblock_signals_on_exec(cmd: &mut Command) {
    let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given; the pointer is to a live local.
    let empty = unsafe {
        libc::sigemptyset(empty.as_mut_ptr());
        empty.assume_init()
    };
    // SAFETY: the closure runs in the forked child before exec and only calls sigprocmask(2),
    // which is async-signal-safe, on a set prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes `cmd` run with the real uid and gid (a setuid recorder must not pass its privilege on):
/// setresgid, then setresuid, in the child before exec.
pub fn drop_privileges_on_exec(cmd: &mut Command, uid: u32, gid: u32) {
    // SAFETY: the closure runs in the forked child before exec and only calls setresgid(2) and
    // setresuid(2), which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setresgid(gid, gid, gid) == -1 || libc::setresuid(uid, uid, uid) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Ignores SIGPIPE, as Rust's runtime does at start-up: a write to a closed pipe then fails with
/// EPIPE instead of killing the recorder. For programs started without that runtime
/// (`#![no_main]`); the programs they run get SIGPIPE's default back from std's spawn/exec.
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN installs no handler code; this runs before any thread is started.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
}

/// Defines a program's C `main` that skips Rust's runtime set-up (which reads /proc/self/maps
/// to guard the main thread's stack: about 0.2 ms) for programs that run before every login
/// shell or wrapped program (with `#![no_main]`). SIGPIPE is ignored as the runtime would do;
/// arguments and environment come from std as usual (glibc hands them over at load time).
#[macro_export]
macro_rules! quick_main {
    ($run:path) => {
        #[no_mangle]
        pub extern "C" fn main(
            _argc: ::std::ffi::c_int,
            _argv: *const *const ::std::ffi::c_char,
        ) -> ::std::ffi::c_int {
            $crate::record::sys::ignore_sigpipe();
            $run();
            0
        }
    };
}

/// While a program runs in the foreground of the same terminal, ^C and ^\ are meant for it:
/// block them here (the program gets a clean mask) until the guard is dropped.
pub struct TerminalSignalsBlocked(nix::sys::signal::SigSet);

/// See [`TerminalSignalsBlocked`].
pub fn block_terminal_signals() -> TerminalSignalsBlocked {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGQUIT);
    let old = set
        .thread_swap_mask(SigmaskHow::SIG_BLOCK)
        .unwrap_or_else(|_| SigSet::empty());
    TerminalSignalsBlocked(old)
}

impl Drop for TerminalSignalsBlocked {
    fn drop(&mut self) {
        let _ = self.0.thread_set_mask();
    }
}

/// The path this program was started by (the kernel's AT_EXECFN), as given to execve.
pub fn exec_path() -> Option<std::path::PathBuf> {
    // SAFETY: getauxval only reads the auxiliary vector; AT_EXECFN's value, when present, is
    // a pointer to a NUL-terminated string on the initial stack, alive for the whole process.
    let p = unsafe { libc::getauxval(libc::AT_EXECFN) } as *const libc::c_char;
    if p.is_null() {
        return None;
    }
    // SAFETY: checked non-null above; the kernel guarantees the terminating NUL.
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    Some(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(
        s.to_bytes(),
    )))
}

/// Logs a line to syslog (facility AUTHPRIV) under the program's name.
pub fn syslog(priority: i32, msg: &str) {
    let Ok(text) = std::ffi::CString::new(msg.replace('\0', " ")) else {
        return;
    };
    // SAFETY: "%s" takes exactly one NUL-terminated string argument, which `text` is.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | priority, c"%s".as_ptr(), text.as_ptr()) };
}

/// Starts `cmd` as the leader of a new session whose controlling terminal is the pty `slave`,
/// with the slave as its stdin, stdout and stderr.
pub fn spawn_on_pty(cmd: &mut Command, slave: &OwnedFd) -> io::Result<Child> {
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave.try_clone()?));
    // SAFETY: the closure runs in the forked child before exec and only calls the
    // async-signal-safe functions setsid(2) and ioctl(2); it allocates nothing and touches no
    // locks. std has already made the slave the child's fd 0.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    // The Command keeps its Stdio (our copies of the slave) until dropped or replaced; release
    // them now, or the pty never reports the end of the session.
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    child
}

/// Ends this process the way the recorded program ended: the same exit code, or the same signal
/// (re-raised with its default action, so a parent sees the same wait status).
pub fn exit_like(code: Option<i32>, signal: Option<i32>) -> ! {
    if let Some(sig) = signal {
        if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
            // SAFETY: installing SIG_DFL is always sound: no handler code runs, and this process is
            // about to die by this signal anyway.
            let _ = unsafe { nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigDfl) };
            let mut set = nix::sys::signal::SigSet::empty();
            set.add(s);
            let _ = set.thread_unblock();
            let _ = nix::sys::signal::raise(s);
        }
        std::process::exit(128 + sig);
    }
    std::process::exit(code.unwrap_or(1))
}

/// Borrows a standard descriptor (0, 1, 2).
pub fn std_fd(fd: i32) -> BorrowedFd<'static> {
    debug_assert!((0..=2).contains(&fd));
    // SAFETY: the standard descriptors are open for the life of the process (a closed one makes
    // the calls using it fail with EBADF, which callers handle); nothing here closes them.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// `read(2)` that retries on EINTR.
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd.as_fd(), buf) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Writes all of `buf` to a blocking descriptor, retrying on EINTR.
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match nix::unistd::write(fd.as_fd(), buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EAGAIN) => {
                // A descriptor someone else made non-blocking: wait until it drains.
                let mut fds = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLOUT,
                )];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
