//! Status codes, the per-thread message, and the guard every entry point
//! runs under.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use modhash::policy::UntrustedReason;
use modhash_load::{CallError, LoadError, Verdict};

/// The status every fallible function returns; `modhash_status` in C, with
/// the same values (the header is checked against this list).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    non_camel_case_types,
    clippy::upper_case_acronyms,
    reason = "the C names"
)]
pub enum modhash_status {
    MODHASH_OK = 0,
    MODHASH_ERR_NULL = 1,
    MODHASH_ERR_ARGUMENT = 2,
    MODHASH_ERR_IO = 3,
    MODHASH_ERR_MANIFEST = 4,
    MODHASH_ERR_UNSEALED = 5,
    MODHASH_ERR_ANCHOR = 6,
    MODHASH_ERR_KEY = 7,
    MODHASH_ERR_NOT_ELF = 8,
    MODHASH_ERR_REJECTED = 9,
    MODHASH_ERR_MUST_ISOLATE = 10,
    MODHASH_ERR_LOAD = 11,
    MODHASH_ERR_CALL = 12,
    MODHASH_ERR_WORKER = 13,
    MODHASH_ERR_PANIC = 14,
    MODHASH_ERR_DEPENDENCY = 15,
}

use modhash_status::*;

/// Every status, in value order, for [`modhash_status::name_of`].
const NAMES: [&CStr; 16] = [
    c"MODHASH_OK",
    c"MODHASH_ERR_NULL",
    c"MODHASH_ERR_ARGUMENT",
    c"MODHASH_ERR_IO",
    c"MODHASH_ERR_MANIFEST",
    c"MODHASH_ERR_UNSEALED",
    c"MODHASH_ERR_ANCHOR",
    c"MODHASH_ERR_KEY",
    c"MODHASH_ERR_NOT_ELF",
    c"MODHASH_ERR_REJECTED",
    c"MODHASH_ERR_MUST_ISOLATE",
    c"MODHASH_ERR_LOAD",
    c"MODHASH_ERR_CALL",
    c"MODHASH_ERR_WORKER",
    c"MODHASH_ERR_PANIC",
    c"MODHASH_ERR_DEPENDENCY",
];

impl modhash_status {
    /// The C name of the status numbered `value` (taken as an integer: a C
    /// caller may pass any number, and an out-of-range Rust enum would be
    /// undefined behaviour).
    pub fn name_of(value: c_int) -> &'static CStr {
        usize::try_from(value)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or(c"MODHASH_UNKNOWN_STATUS")
    }
}

/// A failed call: its status and the line `modhash_last_error` returns.
#[derive(Debug)]
pub struct Failure {
    status: modhash_status,
    message: String,
}

impl Failure {
    /// A failure with `status` and `message`.
    pub fn new(status: modhash_status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A required pointer argument was NULL.
    pub fn null(what: &str) -> Self {
        Self::new(
            MODHASH_ERR_NULL,
            format!("{what} is NULL; pass a valid pointer"),
        )
    }

    /// An argument out of range.
    pub fn argument(message: impl Into<String>) -> Self {
        Self::new(MODHASH_ERR_ARGUMENT, message)
    }

    /// `error` about `file`, as "<file>: <reason>" with every cause.
    pub fn about(
        status: modhash_status,
        file: &std::path::Path,
        error: &dyn std::error::Error,
    ) -> Self {
        Self::new(status, format!("{}: {}", file.display(), chain(error)))
    }

    /// A load failure about `file`, with the status its kind maps to.
    pub fn load(file: &std::path::Path, error: &LoadError) -> Self {
        let status = match error {
            LoadError::Image(_) => MODHASH_ERR_IO,
            LoadError::Profile { .. } => MODHASH_ERR_NOT_ELF,
            LoadError::Rejected { verdict, .. } if only_dependencies_distrusted(verdict) => {
                MODHASH_ERR_DEPENDENCY
            }
            LoadError::Rejected { .. } => MODHASH_ERR_REJECTED,
            LoadError::Unpinned { .. } => MODHASH_ERR_DEPENDENCY,
            LoadError::MustIsolate { .. } => MODHASH_ERR_MUST_ISOLATE,
            LoadError::Isolation { .. } => MODHASH_ERR_WORKER,
            LoadError::JudgedElsewhere => MODHASH_ERR_ARGUMENT,
            _ => MODHASH_ERR_LOAD,
        };
        Self::about(status, file, error)
    }

    /// A call failure: the module's own error, or its worker's.
    pub fn call(file: &std::path::Path, error: &CallError) -> Self {
        let status = match error {
            CallError::Module(_) => MODHASH_ERR_CALL,
            _ => MODHASH_ERR_WORKER,
        };
        Self::about(status, file, error)
    }
}

/// Whether `verdict` distrusts the module for its dependencies alone: the
/// module itself would be trusted. A C host tells this apart by status
/// (`MODHASH_ERR_DEPENDENCY`), since the fix is elsewhere: the library, or
/// the manifest that should list it.
fn only_dependencies_distrusted(verdict: &Verdict) -> bool {
    match verdict {
        Verdict::Untrusted { reasons } => {
            !reasons.is_empty()
                && reasons
                    .iter()
                    .all(|reason| matches!(reason, UntrustedReason::Dependency { .. }))
        }
        _ => false,
    }
}

/// `error` and each cause its message does not already include.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error (one line, no NUL).
fn set_last_error(message: &str) {
    let line: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\0' { ' ' } else { c })
        .collect();
    let line = CString::new(line).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = line);
}

/// This thread's last error; valid until it is replaced.
pub fn last_error() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// Runs an entry point's body: its failure becomes a status and this
/// thread's message, and a panic becomes `MODHASH_ERR_PANIC` instead of
/// unwinding into C.
pub fn shield_status(body: impl FnOnce() -> Result<(), Failure>) -> modhash_status {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return MODHASH_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => panicked(&*panic),
    };
    set_last_error(&failure.message);
    failure.status
}

/// Runs a body that cannot fail; a panic gives `default` (and the message).
pub fn shield<T>(default: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        set_last_error(&panicked(&*panic).message);
        default
    })
}

/// The failure a caught panic becomes.
fn panicked(panic: &(dyn std::any::Any + Send)) -> Failure {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    Failure::new(
        MODHASH_ERR_PANIC,
        format!("internal error in libmodhash ({what}); please report it"),
    )
}
