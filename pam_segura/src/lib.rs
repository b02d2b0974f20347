//! pam_segura: the PAM session module. At open_session it decides from local policy whether
//! this login is recorded and, if so, arms it (a login row in the spool, a root-owned marker,
//! `SEGURA_SESSION` in the session's environment); at close_session it closes the login.
//!
//! ```text
//! session optional pam_segura.so [config=PATH] [fail=open|closed] [debug]
//! ```
//!
//! Thin by design: the logic lives in `libsegura::login`. This crate only talks to libpam.
//! It never touches the network, starts no thread and installs no logger (the process is sshd's,
//! su's or login's); every wait is bounded (SQLite busy timeout 250 ms); panics are caught at
//! the FFI edge by pam-bindings and turned into an error code.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::time::Duration;

use libsegura::config::{Config, DEFAULT_CONFIG_PATH};
use libsegura::login::{self, Armed, LoginRequest, ENV_SESSION};
use pam::constants::{PamFlag, PamResultCode};
use pam::items::{RHost, RUser, Service, Tty, User};
use pam::module::{PamHandle, PamHooks};
use pam::pam_hooks;

/// How long open_session may wait for the spool's lock.
const BUSY_TIMEOUT: Duration = Duration::from_millis(250);
/// pam_set_data key for the armed login's id.
const DATA_KEY: &str = "segura_login_id";

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_putenv(pamh: *mut c_void, name_value: *const c_char) -> c_int;
    fn pam_getenv(pamh: *mut c_void, name: *const c_char) -> *const c_char;
}

/// Module arguments.
#[derive(Debug)]
struct Args {
    config: PathBuf,
    fail_closed: bool,
    debug: bool,
}

fn parse_args(args: &[&CStr]) -> Args {
    let mut a = Args {
        config: PathBuf::from(DEFAULT_CONFIG_PATH),
        fail_closed: false,
        debug: false,
    };
    for arg in args {
        let s = arg.to_string_lossy();
        match s.split_once('=') {
            Some(("config", p)) => a.config = PathBuf::from(p),
            Some(("fail", "open")) => a.fail_closed = false,
            Some(("fail", "closed")) => a.fail_closed = true,
            None if s == "debug" => a.debug = true,
            _ => log(
                libc::LOG_WARNING,
                &format!("ignoring unknown argument {s:?}"),
            ),
        }
    }
    a
}

/// Logs to syslog (AUTHPRIV), under the host program's identity, as PAM modules do.
fn log(priority: c_int, msg: &str) {
    let Ok(text) = CString::new(format!("pam_segura: {msg}").replace('\0', " ")) else {
        return;
    };
    // SAFETY: "%s" takes exactly one NUL-terminated string argument, which `text` is; syslog(3)
    // copies it before returning.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | priority, c"%s".as_ptr(), text.as_ptr()) };
}

fn item<'a, T: pam::items::Item<'a> + std::ops::Deref<Target = &'a CStr>>(
    pamh: &'a PamHandle,
) -> Option<String> {
    match pamh.get_item::<T>() {
        Ok(Some(v)) => Some(v.to_string_lossy().into_owned()),
        _ => None,
    }
}

fn raw(pamh: &mut PamHandle) -> *mut c_void {
    (pamh as *mut PamHandle).cast()
}

struct Module;
pam_hooks!(Module);

impl PamHooks for Module {
    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        let args = parse_args(&args);
        // A service file that includes another (Debian's su-l includes su) may run this module
        // twice in one PAM session: arm once.
        // SAFETY: only this module stores DATA_KEY, always as a Box<String>.
        if unsafe { pamh.get_data::<String>(DATA_KEY) }.is_ok() {
            return PamResultCode::PAM_SUCCESS;
        }
        let Some(user) = item::<User>(pamh) else {
            return fail(&args, "open_session: no PAM_USER", true);
        };
        let req = LoginRequest {
            user,
            service: item::<Service>(pamh),
            tty: item::<Tty>(pamh),
            rhost: item::<RHost>(pamh),
            ruser: item::<RUser>(pamh),
        };
        let config = match Config::load(Some(&args.config)) {
            Ok(c) => c,
            // Whether this login had to be recorded cannot be known: fail=closed refuses it.
            Err(e) => return fail(&args, &format!("open_session for {}: {e}", req.user), true),
        };
        match login::arm(&req, &config, &args.config, BUSY_TIMEOUT) {
            Ok(Armed::No { reason }) => {
                if args.debug {
                    log(libc::LOG_DEBUG, &format!("user {}: {reason}", req.user));
                }
                PamResultCode::PAM_SUCCESS
            }
            Ok(Armed::Yes { id, reason }) => {
                let id = id.to_string();
                if let Err(code) = pamh.set_data(DATA_KEY, Box::new(id.clone())) {
                    log(libc::LOG_WARNING, &format!("pam_set_data: {code:?}"));
                }
                let env = CString::new(format!("{ENV_SESSION}={id}")).unwrap_or_default();
                // SAFETY: pamh is the live handle libpam passed to this hook; pam_putenv copies
                // the NUL-terminated string.
                let rc = unsafe { pam_putenv(raw(pamh), env.as_ptr()) };
                if rc != 0 {
                    log(libc::LOG_WARNING, &format!("pam_putenv failed ({rc})"));
                }
                log(
                    libc::LOG_INFO,
                    &format!(
                        "login {id} of {} on {} armed for recording: {reason}",
                        req.user,
                        req.service.as_deref().unwrap_or("?")
                    ),
                );
                PamResultCode::PAM_SUCCESS
            }
            Err(e) => fail(
                &args,
                &format!(
                    "open_session for {}: recording required but not armed: {e}",
                    req.user
                ),
                true,
            ),
        }
    }

    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        let args = parse_args(&args);
        // SAFETY: only this module stores DATA_KEY, always as a Box<String>.
        let id = match unsafe { pamh.get_data::<String>(DATA_KEY) } {
            Ok(id) => Some(id.clone()),
            Err(_) => {
                let name = CString::new(ENV_SESSION).unwrap_or_default();
                // SAFETY: pamh is the live handle; pam_getenv returns NULL or a pointer into
                // libpam's environment, valid until the next pam_*env call; copied at once.
                let p = unsafe { pam_getenv(raw(pamh), name.as_ptr()) };
                // SAFETY: checked non-null; libpam keeps it NUL-terminated.
                (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            }
        };
        let Some(id) = id.and_then(|s| uuid::Uuid::parse_str(&s).ok()) else {
            return PamResultCode::PAM_SUCCESS; // nothing was armed
        };
        let result = Config::load(Some(&args.config))
            .map_err(login::LoginError::from)
            .and_then(|c| login::disarm(id, &c, BUSY_TIMEOUT));
        if let Err(e) = result {
            log(libc::LOG_ERR, &format!("close_session of login {id}: {e}"));
        } else if args.debug {
            log(libc::LOG_DEBUG, &format!("login {id} closed"));
        }
        PamResultCode::PAM_SUCCESS
    }
}

/// An internal error: logged; the login proceeds (fail=open) or, when recording was or may have
/// been required, is refused (fail=closed).
fn fail(args: &Args, msg: &str, recording_required: bool) -> PamResultCode {
    if args.fail_closed && recording_required {
        log(
            libc::LOG_ERR,
            &format!("{msg}; refusing the session (fail=closed)"),
        );
        PamResultCode::PAM_SESSION_ERR
    } else {
        log(
            libc::LOG_ERR,
            &format!("{msg}; letting the login proceed unrecorded (fail=open)"),
        );
        PamResultCode::PAM_SUCCESS
    }
}
