//! modhash-plugin: the module ABI, and what a Rust module author depends on.
//!
//! A module is a shared object that exports one symbol,
//! [`SYMBOL`] (`modhash_plugin_v1`): a function returning a pointer to a
//! static [`PluginV1`] table. The version is part of the symbol's name so a
//! host never misreads a table of another version; the table repeats the
//! version and its own size so the host checks both before calling anything.
//! C and C++ authors use `include/modhash_plugin.h`, which describes the same
//! layout.
//!
//! The host loads a module the same way in-process or in an isolated worker
//! and calls it through this table only, so a module needs no knowledge of
//! where it runs.
//!
//! A Rust module implements [`Plugin`] and invokes [`export!`]:
//!
//! ```
//! use modhash_plugin::{export, Error, Plugin};
//!
//! /// Answers method 0 with its input reversed.
//! struct Reverse;
//!
//! impl Plugin for Reverse {
//!     const NAME: &'static std::ffi::CStr = c"reverse";
//!
//!     fn create(_config: &[u8]) -> Result<Self, Error> {
//!         Ok(Reverse)
//!     }
//!
//!     fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
//!         match method {
//!             0 => Ok(input.iter().rev().copied().collect()),
//!             other => Err(Error::new(format!("unknown method {other}"))),
//!         }
//!     }
//! }
//!
//! export!(Reverse);
//! ```
//!
//! Panics never unwind across the ABI: the shims [`export!`] generates catch
//! them and return [`STATUS_PANIC`] with the panic message.
//!
//! Hosts call a table through [`host`], which the modhash loader and its
//! isolated worker share.

use std::ffi::{c_char, c_void, CStr};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub mod host;

/// The ABI version this crate implements.
pub const ABI_VERSION: u32 = 1;

/// The name of the one symbol a module exports.
pub const SYMBOL: &str = "modhash_plugin_v1";

/// The call succeeded; the sink holds the output.
pub const STATUS_OK: i32 = 0;
/// The call failed; the sink holds a UTF-8 message saying why.
pub const STATUS_ERROR: i32 = 1;
/// The module caught a panic; the sink holds its message.
pub const STATUS_PANIC: i32 = 2;

/// Where a module writes its output or error message (`modhash_sink`).
///
/// The host owns the memory: `write` copies the bytes, so nothing is freed
/// across the boundary and host and module may use different allocators.
#[repr(C)]
#[derive(Debug)]
pub struct Sink {
    /// Passed back to `write` unchanged.
    pub ctx: *mut c_void,
    /// Appends `len` bytes from `data`.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize),
}

impl Sink {
    /// Appends `bytes` to the host's buffer.
    pub fn write(&mut self, bytes: &[u8]) {
        // SAFETY: the host built this sink for the duration of the current
        // call and `write` copies exactly `bytes.len()` bytes from a valid
        // slice.
        unsafe { (self.write)(self.ctx, bytes.as_ptr(), bytes.len()) }
    }
}

/// `create(config, config_len, &mut instance, err) -> status`.
pub type CreateFn = unsafe extern "C" fn(
    config: *const u8,
    config_len: usize,
    instance: *mut *mut c_void,
    err: *mut Sink,
) -> i32;

/// `call(instance, method, input, input_len, out) -> status`.
pub type CallFn = unsafe extern "C" fn(
    instance: *mut c_void,
    method: u32,
    input: *const u8,
    input_len: usize,
    out: *mut Sink,
) -> i32;

/// `destroy(instance)`.
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);

/// The type of the exported [`SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const PluginV1;

/// The version-1 table (`modhash_plugin_v1_table`).
#[repr(C)]
#[derive(Debug)]
pub struct PluginV1 {
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<PluginV1>()`, so later versions can append fields.
    pub table_size: u32,
    /// The module's name: static, NUL-terminated UTF-8.
    pub name: *const c_char,
    /// Creates an instance from configuration bytes.
    pub create: CreateFn,
    /// Runs one method on an instance.
    pub call: CallFn,
    /// Destroys an instance; called exactly once per instance.
    pub destroy: DestroyFn,
}

// SAFETY: a table is immutable static data: `name` points at a static C
// string and the rest are plain values and function pointers, so sharing a
// reference between threads reads only data nobody writes.
unsafe impl Sync for PluginV1 {}

impl PluginV1 {
    /// The table for `P`, with the shims that catch panics.
    pub const fn new<P: Plugin>() -> Self {
        Self {
            abi_version: ABI_VERSION,
            // The table is a few dozen bytes; the cast cannot truncate.
            table_size: std::mem::size_of::<PluginV1>() as u32,
            name: P::NAME.as_ptr(),
            create: create_shim::<P>,
            call: call_shim::<P>,
            destroy: destroy_shim::<P>,
        }
    }
}

/// Why a module refused to create an instance or to answer a call. The
/// message reaches the host (and its user) as it is, so say what went wrong
/// and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

/// A module written in Rust. The host never calls one instance from two
/// threads at once, hence `&mut self`; it may call it from different threads
/// one after the other, hence `Send`.
pub trait Plugin: Sized + Send + 'static {
    /// The module's name, reported to the host (and by `modhash load`).
    const NAME: &'static CStr;

    /// Creates an instance from the host's configuration bytes (often empty).
    fn create(config: &[u8]) -> Result<Self, Error>;

    /// Runs `method` on `input`.
    fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Error>;
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as this shared
/// object's module table. Invoke it once per module crate, which must be
/// built as a `cdylib`.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        /// The module's ABI entry point.
        #[unsafe(no_mangle)]
        pub extern "C" fn modhash_plugin_v1() -> *const $crate::PluginV1 {
            static TABLE: $crate::PluginV1 = $crate::PluginV1::new::<$plugin>();
            &TABLE
        }
    };
}

/// A byte slice from a pointer and length that may be null when empty.
///
/// # Safety
/// If `len > 0`, `ptr` must point at `len` readable bytes that stay valid and
/// unmodified for `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: non-null and non-empty, so the caller's contract applies.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// The message a panic carried.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    format!("module panicked: {text}")
}

/// Reports `result` to `sink` and returns the status the ABI expects.
fn report(result: std::thread::Result<Result<Vec<u8>, Error>>, sink: *mut Sink) -> i32 {
    let (status, bytes) = match result {
        Ok(Ok(output)) => (STATUS_OK, output),
        Ok(Err(error)) => (STATUS_ERROR, error.0.into_bytes()),
        Err(payload) => (STATUS_PANIC, panic_message(&*payload).into_bytes()),
    };
    // SAFETY: the host passes a sink valid for the duration of the call, or
    // null, which `as_mut` turns into `None`.
    if let Some(sink) = unsafe { sink.as_mut() } {
        sink.write(&bytes);
    }
    status
}

unsafe extern "C" fn create_shim<P: Plugin>(
    config: *const u8,
    config_len: usize,
    instance: *mut *mut c_void,
    err: *mut Sink,
) -> i32 {
    if instance.is_null() {
        return report(Ok(Err(Error::from("host passed no instance slot"))), err);
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the ABI requires `config` to be valid for `config_len`
        // bytes during the call.
        let config = unsafe { bytes(config, config_len) };
        P::create(config).map(|plugin| {
            // SAFETY: checked non-null above; the host gives a writable slot.
            unsafe { *instance = Box::into_raw(Box::new(plugin)).cast::<c_void>() };
            Vec::new()
        })
    }));
    report(result, err)
}

unsafe extern "C" fn call_shim<P: Plugin>(
    instance: *mut c_void,
    method: u32,
    input: *const u8,
    input_len: usize,
    out: *mut Sink,
) -> i32 {
    // SAFETY: the host passes back the pointer `create_shim` made from a
    // `Box<P>`, never concurrently, and not after `destroy`.
    let Some(plugin) = (unsafe { instance.cast::<P>().as_mut() }) else {
        return report(Ok(Err(Error::from("host passed a null instance"))), out);
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the ABI requires `input` to be valid for `input_len` bytes
        // during the call.
        let input = unsafe { bytes(input, input_len) };
        plugin.call(method, input)
    }));
    report(result, out)
}

unsafe extern "C" fn destroy_shim<P: Plugin>(instance: *mut c_void) {
    if instance.is_null() {
        return;
    }
    // SAFETY: `instance` came from `Box::into_raw` in `create_shim` and the
    // host destroys each instance exactly once.
    let plugin = unsafe { Box::from_raw(instance.cast::<P>()) };
    // A panicking destructor must not unwind into the host; there is nobody
    // left to report it to, and the panic hook has already printed it.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(plugin)));
}
