//! libsegura's C ABI (`libsegura.so.0`, `segura.h`): ask the same policy questions and feed the
//! same spool as pam_segura, from C or any language with a C FFI.
//!
//! Rules: handles are opaque; every pointer is checked; strings must be UTF-8 (checked); no
//! panic crosses the boundary (caught, reported as `SEGURA_E_PANIC`); the last error message is
//! kept per thread (`segura_last_error`). Handles are thread-safe (each is behind a lock).
//! Strings the library returns are freed with `segura_string_free`; handles with their own
//! close/end function. Closing a handle twice is detected and refused where possible (a
//! registry of live handles), never a double free.
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use libsegura::chunk::{Event, Stream};
use libsegura::config::Config;
use libsegura::identity;
use libsegura::policy::{self, Request};
use libsegura::record::ChunkWriter;
use libsegura::spool::{RecordingEnd, RecordingKind, RecordingMeta, Spool, SpoolOptions};

/// Success.
pub const SEGURA_OK: c_int = 0;
/// A required pointer was NULL.
pub const SEGURA_E_NULL: c_int = -1;
/// A string was not UTF-8.
pub const SEGURA_E_UTF8: c_int = -2;
/// An argument or handle was not valid (e.g. a handle already closed).
pub const SEGURA_E_INVALID: c_int = -3;
/// The configuration, the spool or the platform failed (see `segura_last_error`).
pub const SEGURA_E_FAILED: c_int = -4;
/// An internal error was caught (a bug; see `segura_last_error`).
pub const SEGURA_E_PANIC: c_int = -5;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

struct Fail(c_int, String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Fail {
        Fail(SEGURA_E_FAILED, e.to_string())
    }
}

/// Runs `f`, turning errors and panics into codes and the thread's last error.
fn guard(f: impl FnOnce() -> Result<(), Fail>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error("");
            SEGURA_OK
        }
        Ok(Err(Fail(code, msg))) => {
            set_error(&msg);
            code
        }
        Err(_) => {
            set_error("internal error (panic caught at the C boundary)");
            SEGURA_E_PANIC
        }
    }
}

/// An optional C string argument: NULL is `None`.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null, and the caller promises a NUL-terminated string alive for the call.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(Some)
        .map_err(|_| Fail(SEGURA_E_UTF8, format!("{what} is not UTF-8")))
}

/// A required C string argument.
///
/// # Safety
/// As for [`opt_str`].
unsafe fn req_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, Fail> {
    // SAFETY: forwarded contract.
    unsafe { opt_str(p, what) }?.ok_or_else(|| Fail(SEGURA_E_NULL, format!("{what} is NULL")))
}

fn out_string(s: &str) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .unwrap_or_default()
        .into_raw()
}

static LIVE: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

fn register(p: usize) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.get_or_insert_with(HashSet::new).insert(p);
}

fn is_live(p: usize) -> bool {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.as_ref().is_some_and(|l| l.contains(&p))
}

fn unregister(p: usize) -> bool {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.as_mut().is_some_and(|l| l.remove(&p))
}

/// An open configuration and spool.
pub struct segura_t {
    config: Config,
    spool: Mutex<Spool>,
}

/// A recording being written.
pub struct segura_rec_t {
    writer: Mutex<Option<ChunkWriter<Spool>>>,
    id: uuid::Uuid,
}

/// The library's version, e.g. "0.1.0" (static; do not free).
#[no_mangle]
pub extern "C" fn segura_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The calling thread's last error message ("" after a success; static until the thread's next
/// call; do not free).
#[no_mangle]
pub extern "C" fn segura_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Frees a string the library returned. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not freed yet.
#[no_mangle]
pub unsafe extern "C" fn segura_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the string came from CString::into_raw in this library (caller's contract).
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Opens the configuration (`config_path`, or NULL for the default / $SEGURA_CONFIG) and its
/// spool. On success `*out` is a handle to close with `segura_close`.
///
/// # Safety
/// `config_path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn segura_open(config_path: *const c_char, out: *mut *mut segura_t) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(Fail(SEGURA_E_NULL, "out is NULL".into()));
        }
        // SAFETY: checked above that out is non-null; the caller promises it is writable.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: caller's contract on config_path.
        let path = unsafe { opt_str(config_path, "config_path") }?.map(PathBuf::from);
        let config = Config::load(path.as_deref())?;
        let opts =
            SpoolOptions::from_config(&config.spool).map_err(|e| Fail(SEGURA_E_FAILED, e))?;
        let spool = Spool::open(&config.spool.path, opts)?;
        let h = Box::into_raw(Box::new(segura_t {
            config,
            spool: Mutex::new(spool),
        }));
        register(h as usize);
        // SAFETY: out is non-null and writable (checked above).
        unsafe { *out = h };
        Ok(())
    })
}

/// Closes a handle. Returns SEGURA_E_INVALID (and frees nothing) for a handle that is not open.
///
/// # Safety
/// `h` is NULL or a pointer `segura_open` returned.
#[no_mangle]
pub unsafe extern "C" fn segura_close(h: *mut segura_t) -> c_int {
    guard(|| {
        if h.is_null() {
            return Err(Fail(SEGURA_E_NULL, "handle is NULL".into()));
        }
        if !unregister(h as usize) {
            return Err(Fail(
                SEGURA_E_INVALID,
                "handle is not open (closed twice?)".into(),
            ));
        }
        // SAFETY: the registry says this pointer came from Box::into_raw in segura_open and has
        // not been freed; it is removed from the registry first, so it is freed once.
        drop(unsafe { Box::from_raw(h) });
        Ok(())
    })
}

/// Checks a live handle and borrows it.
///
/// # Safety
/// `h` is NULL or a pointer `segura_open` returned.
unsafe fn handle<'a>(h: *const segura_t) -> Result<&'a segura_t, Fail> {
    if h.is_null() {
        return Err(Fail(SEGURA_E_NULL, "handle is NULL".into()));
    }
    if !is_live(h as usize) {
        return Err(Fail(SEGURA_E_INVALID, "handle is not open".into()));
    }
    // SAFETY: registered, so it is a live Box<segura_t> from segura_open.
    Ok(unsafe { &*h })
}

/// What the policy decides for `user` at `service` (may be NULL) or for running `binary` (NULL
/// asks about the login session). `*record` and `*audit` get 0 or 1; `*rule_name` (if not NULL)
/// gets the deciding rule's name, or NULL, to free with `segura_string_free`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; output pointers are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn segura_policy_check(
    h: *const segura_t,
    user: *const c_char,
    service: *const c_char,
    binary: *const c_char,
    record: *mut c_int,
    audit: *mut c_int,
    rule_name: *mut *mut c_char,
) -> c_int {
    guard(|| {
        // SAFETY: caller's contract for every pointer below; each is checked before use.
        let h = unsafe { handle(h) }?;
        // SAFETY: as above.
        let user = unsafe { req_str(user, "user") }?;
        // SAFETY: as above.
        let service = unsafe { opt_str(service, "service") }?;
        // SAFETY: as above.
        let binary = unsafe { opt_str(binary, "binary") }?;
        let info = identity::user_by_name(user)?;
        let host = identity::hostname();
        let rules = libsegura::policy_cache::effective_rules(&h.config);
        let d = policy::decide(
            &rules,
            &Request {
                user: &info,
                host: &host,
                service,
                binary: binary.map(Path::new),
            },
        );
        if !record.is_null() {
            // SAFETY: non-null, writable by contract.
            unsafe { *record = c_int::from(d.record) };
        }
        if !audit.is_null() {
            // SAFETY: non-null, writable by contract.
            unsafe { *audit = c_int::from(d.audit) };
        }
        if !rule_name.is_null() {
            let name = d
                .rule
                .map(|r| out_string(&r.name))
                .unwrap_or(std::ptr::null_mut());
            // SAFETY: non-null, writable by contract.
            unsafe { *rule_name = name };
        }
        Ok(())
    })
}

/// Begins a recording of `command` (a description, e.g. "vncviewer host") by `user` (NULL: the
/// calling user) on a `cols`×`rows` terminal. On success `*out` is a recording to feed and end
/// with `segura_rec_end`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn segura_rec_begin(
    h: *const segura_t,
    user: *const c_char,
    command: *const c_char,
    cols: u16,
    rows: u16,
    out: *mut *mut segura_rec_t,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(Fail(SEGURA_E_NULL, "out is NULL".into()));
        }
        // SAFETY: non-null, writable by contract.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: caller's contract for every pointer below; each is checked before use.
        let h = unsafe { handle(h) }?;
        // SAFETY: as above.
        let user = unsafe { opt_str(user, "user") }?;
        // SAFETY: as above.
        let command = unsafe { req_str(command, "command") }?;
        let info = match user {
            Some(u) => identity::user_by_name(u)?,
            None => identity::current_user()?,
        };
        let mut meta = RecordingMeta::here(
            RecordingKind::Command,
            &info,
            identity::hostname(),
            vec![command.to_string()],
        );
        meta.cols = cols.max(1);
        meta.rows = rows.max(1);
        meta.started_at = libsegura::time::now_us();
        meta.recorder_pid = std::process::id();
        let opts =
            SpoolOptions::from_config(&h.config.spool).map_err(|e| Fail(SEGURA_E_FAILED, e))?;
        let spool = Spool::open(&h.config.spool.path, opts)?;
        let writer = ChunkWriter::begin(spool, &meta, h.config.record.compression_level)?;
        let r = Box::into_raw(Box::new(segura_rec_t {
            writer: Mutex::new(Some(writer)),
            id: meta.id,
        }));
        register(r as usize);
        // SAFETY: non-null, writable (checked above).
        unsafe { *out = r };
        Ok(())
    })
}

/// # Safety
/// `r` is NULL or a pointer `segura_rec_begin` returned.
unsafe fn rec<'a>(r: *const segura_rec_t) -> Result<&'a segura_rec_t, Fail> {
    if r.is_null() {
        return Err(Fail(SEGURA_E_NULL, "recording is NULL".into()));
    }
    if !is_live(r as usize) {
        return Err(Fail(SEGURA_E_INVALID, "recording is not open".into()));
    }
    // SAFETY: registered, so a live Box<segura_rec_t>.
    Ok(unsafe { &*r })
}

/// # Safety
/// `data` is NULL (then `len` must be 0) or points to `len` readable bytes.
unsafe fn feed(
    r: *const segura_rec_t,
    stream: Stream,
    data: *const u8,
    len: usize,
    t_us: u64,
) -> c_int {
    guard(|| {
        // SAFETY: caller's contract.
        let r = unsafe { rec(r) }?;
        let bytes: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(Fail(SEGURA_E_NULL, "data is NULL".into()));
        } else {
            // SAFETY: non-null and `len` readable bytes by contract.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        let mut w = r.writer.lock().unwrap_or_else(|e| e.into_inner());
        let w = w
            .as_mut()
            .ok_or_else(|| Fail(SEGURA_E_INVALID, "recording ended".into()))?;
        w.push(stream, t_us, bytes);
        w.flush_due(t_us);
        match w.stopped() {
            Some(why) => Err(Fail(SEGURA_E_FAILED, format!("recording stopped: {why}"))),
            None => Ok(()),
        }
    })
}

/// Adds output (what the terminal showed) at `t_us` microseconds after the start.
///
/// # Safety
/// `data` is NULL with `len` 0, or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn segura_rec_output(
    r: *const segura_rec_t,
    data: *const u8,
    len: usize,
    t_us: u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { feed(r, Stream::Output, data, len, t_us) }
}

/// Adds input (what was typed) at `t_us` microseconds after the start.
///
/// # Safety
/// As for `segura_rec_output`.
#[no_mangle]
pub unsafe extern "C" fn segura_rec_input(
    r: *const segura_rec_t,
    data: *const u8,
    len: usize,
    t_us: u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { feed(r, Stream::Input, data, len, t_us) }
}

/// Records a terminal resize at `t_us`.
///
/// # Safety
/// `r` is NULL or a pointer `segura_rec_begin` returned.
#[no_mangle]
pub unsafe extern "C" fn segura_rec_resize(
    r: *const segura_rec_t,
    cols: u16,
    rows: u16,
    t_us: u64,
) -> c_int {
    let e = Event::Resize { cols, rows }.encode();
    // SAFETY: `e` is a live buffer of e.len() bytes; `r` forwarded.
    unsafe { feed(r, Stream::Events, e.as_ptr(), e.len(), t_us) }
}

/// Ends a recording with the program's exit code and frees it. `*id_out` (if not NULL) gets
/// the recording's id, to free with `segura_string_free`.
///
/// # Safety
/// `r` is NULL or a pointer `segura_rec_begin` returned; `id_out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn segura_rec_end(
    r: *mut segura_rec_t,
    exit_code: c_int,
    id_out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        if r.is_null() {
            return Err(Fail(SEGURA_E_NULL, "recording is NULL".into()));
        }
        if !unregister(r as usize) {
            return Err(Fail(
                SEGURA_E_INVALID,
                "recording is not open (ended twice?)".into(),
            ));
        }
        // SAFETY: it was registered, so a Box from segura_rec_begin, freed exactly once here.
        let r = unsafe { Box::from_raw(r) };
        let writer = r
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| Fail(SEGURA_E_INVALID, "recording ended".into()))?;
        writer.finish(RecordingEnd {
            ended_at: libsegura::time::now_us(),
            exit_code: Some(exit_code),
            ..Default::default()
        })?;
        if !id_out.is_null() {
            // SAFETY: non-null, writable by contract.
            unsafe { *id_out = out_string(&r.id.to_string()) };
        }
        Ok(())
    })
}

/// Recordings with something not yet delivered, and how many stored bytes wait.
///
/// # Safety
/// `h` is NULL or from `segura_open`; outputs are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn segura_status(
    h: *const segura_t,
    pending_recordings: *mut u64,
    pending_bytes: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: caller's contract.
        let h = unsafe { handle(h) }?;
        let s = h.spool.lock().unwrap_or_else(|e| e.into_inner()).status()?;
        if !pending_recordings.is_null() {
            // SAFETY: non-null, writable by contract.
            unsafe { *pending_recordings = s.recordings_pending_upload };
        }
        if !pending_bytes.is_null() {
            // SAFETY: non-null, writable by contract.
            unsafe { *pending_bytes = s.bytes_pending_upload };
        }
        Ok(())
    })
}

/// One delivery pass to the platform (like `segura sync`). Blocks for the pass.
///
/// # Safety
/// `h` is NULL or from `segura_open`.
#[no_mangle]
pub unsafe extern "C" fn segura_sync(h: *const segura_t) -> c_int {
    guard(|| {
        // SAFETY: caller's contract.
        let h = unsafe { handle(h) }?;
        let creds = segura_agent::Credentials::load(&h.config.upload.credentials)?;
        let mut client = segura_agent::Client::with_credentials(
            &creds,
            std::time::Duration::from_millis(h.config.upload.timeout_ms),
        );
        let spool = h.spool.lock().unwrap_or_else(|e| e.into_inner());
        segura_agent::sync_once(&spool, &mut client, &h.config.upload)?;
        Ok(())
    })
}
