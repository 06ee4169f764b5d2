//! libmodhash: the C API of modhash. The interface, and the contract of
//! every function, is `include/modhash.h`; this crate is a thin layer of
//! opaque handles over [`modhash_load::Loader`] and the core policy.
//!
//! Every entry point runs its body under [`std::panic::catch_unwind`], so a
//! bug inside the library becomes `MODHASH_ERR_PANIC` with a message, never
//! an unwind across the C boundary (which would abort the host). Handles are
//! `Box`es handed out with [`Box::into_raw`]; the host, which images and
//! libraries refer back to, is shared with [`Arc`] so no handle depends on
//! the host outliving it.

mod error;
mod handles;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::fd::BorrowedFd;
use std::ptr;
use std::sync::Arc;

pub use error::modhash_status;
use error::{shield, shield_status, Failure};
pub use handles::{modhash_trust, modhash_untrusted_action};
use handles::{path_arg, HostBuilder, HostInner, Image, Library, ModuleHandle, VerdictHandle};

/// A policy being built (`modhash_host_builder` in C).
#[allow(non_camel_case_types, reason = "the C name")]
pub type modhash_host_builder = HostBuilder;
/// A built host (`modhash_host` in C).
#[allow(non_camel_case_types, reason = "the C name")]
pub type modhash_host = Arc<HostInner>;
/// A verdict (`modhash_verdict` in C).
#[allow(non_camel_case_types, reason = "the C name")]
pub type modhash_verdict = VerdictHandle;
/// A judged image (`modhash_image` in C).
#[allow(non_camel_case_types, reason = "the C name")]
pub type modhash_image = Image;
/// A dlopen handle of an image (`modhash_library` in C).
#[allow(non_camel_case_types, reason = "the C name")]
pub type modhash_library = Library;
/// A loaded module (`modhash_module` in C).
#[allow(non_camel_case_types, reason = "the C name")]
pub type modhash_module = ModuleHandle;

/// Stores `value` in `*out` as a new handle.
///
/// # Safety
/// `out` must be valid for a write of one pointer (checked for NULL).
unsafe fn give<T>(out: *mut *mut T, value: T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null("out"));
    }
    // SAFETY: `out` is not NULL and the caller guarantees it is writable.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
    Ok(())
}

/// Borrows a handle the host passed in.
///
/// # Safety
/// `ptr` must be NULL or a live handle of type `T` made by this library.
unsafe fn borrow<'a, T>(ptr: *const T, what: &'static str) -> Result<&'a T, Failure> {
    // SAFETY: the caller guarantees `ptr` is NULL or a live handle.
    unsafe { ptr.as_ref() }.ok_or(Failure::null(what))
}

/// Borrows a handle mutably.
///
/// # Safety
/// `ptr` must be NULL or a live handle of type `T`, used by this thread only.
unsafe fn borrow_mut<'a, T>(ptr: *mut T, what: &'static str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller guarantees `ptr` is NULL or a live, unshared handle.
    unsafe { ptr.as_mut() }.ok_or(Failure::null(what))
}

/// Frees a handle made by [`give`]; NULL is ignored.
///
/// # Safety
/// `ptr` must be NULL or a live handle of type `T` that is not used again.
unsafe fn free<T: ?Sized>(ptr: *mut T) {
    if !ptr.is_null() {
        shield((), || {
            // SAFETY: the caller hands back ownership of a handle made by
            // `Box::into_raw`.
            drop(unsafe { Box::from_raw(ptr) });
        });
    }
}

/// A `const char *` of a string owned by a handle, NULL when absent.
fn c_ptr(s: Option<&CStr>) -> *const c_char {
    s.map_or(ptr::null(), CStr::as_ptr)
}

/// The message of the last failure on this thread.
#[no_mangle]
pub extern "C" fn modhash_last_error() -> *const c_char {
    error::last_error()
}

/// The name of a status.
#[no_mangle]
pub extern "C" fn modhash_status_name(status: c_int) -> *const c_char {
    modhash_status::name_of(status).as_ptr()
}

/// The library's version.
#[no_mangle]
pub extern "C" fn modhash_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => c"?",
        };
    VERSION.as_ptr()
}

/// Starts a builder from the host's anchor record.
///
/// # Safety
/// `anchor_record` must be readable for `len` bytes; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_new(
    anchor_record: *const c_void,
    len: usize,
    out: *mut *mut modhash_host_builder,
) -> modhash_status {
    shield_status(|| {
        if anchor_record.is_null() {
            return Err(Failure::null("anchor_record"));
        }
        // Checked before anything is read or allocated: a wrong length is
        // a wrong argument, whatever its size.
        HostBuilder::check_record_len(len)?;
        let mut record = [0u8; modhash::anchor::RECORD_LEN];
        for (i, byte) in record.iter_mut().enumerate() {
            // SAFETY: the caller guarantees `len` readable bytes; a volatile
            // read, so the compiler cannot substitute the placeholder record
            // it saw when the host was compiled.
            *byte = unsafe { anchor_record.cast::<u8>().add(i).read_volatile() };
        }
        // SAFETY: `out` is checked for NULL by `give`.
        unsafe { give(out, HostBuilder::new(&record)?) }
    })
}

/// Runs `set` on a builder.
///
/// # Safety
/// `builder` must be NULL or a live builder.
unsafe fn with_builder(
    builder: *mut modhash_host_builder,
    set: impl FnOnce(&mut HostBuilder) -> Result<(), Failure>,
) -> modhash_status {
    shield_status(|| {
        // SAFETY: the caller guarantees `builder` is NULL or live.
        set(unsafe { borrow_mut(builder, "builder") }?)
    })
}

/// The manifest file.
///
/// # Safety
/// `builder` NULL or live; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_manifest_file(
    builder: *mut modhash_host_builder,
    path: *const c_char,
) -> modhash_status {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_builder(builder, |b| {
            let path = path_arg(path, "path")?;
            b.set(|b| b.manifest_file(path))
        })
    }
}

/// A key file.
///
/// # Safety
/// `builder` NULL or live; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_key_file(
    builder: *mut modhash_host_builder,
    path: *const c_char,
) -> modhash_status {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_builder(builder, |b| {
            let path = path_arg(path, "path")?;
            b.set(|b| b.trusted_key_file(path))
        })
    }
}

/// Copies `len` bytes at `bytes`, which must not be NULL unless `len` is 0.
///
/// # Safety
/// `bytes` must be readable for `len` bytes when not NULL.
unsafe fn bytes_arg<'a>(
    bytes: *const u8,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if bytes.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(bytes, len) })
}

/// A key given as bytes.
///
/// # Safety
/// `builder` NULL or live; `key` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_key(
    builder: *mut modhash_host_builder,
    key: *const u8,
    len: usize,
) -> modhash_status {
    // SAFETY: forwarded caller guarantees.
    unsafe { with_builder(builder, |b| b.key_bytes(bytes_arg(key, len, "key")?, "key")) }
}

/// A libcamera RSA key as DER SubjectPublicKeyInfo.
///
/// # Safety
/// `builder` NULL or live; `spki_der` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_libcamera_key(
    builder: *mut modhash_host_builder,
    spki_der: *const u8,
    len: usize,
) -> modhash_status {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_builder(builder, |b| {
            b.libcamera_key(bytes_arg(spki_der, len, "spki_der")?)
        })
    }
}

/// A signtab directory.
///
/// # Safety
/// `builder` NULL or live; `dir` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_signtab(
    builder: *mut modhash_host_builder,
    dir: *const c_char,
) -> modhash_status {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_builder(builder, |b| {
            let dir = path_arg(dir, "dir")?;
            b.set(|b| b.signtab(dir))
        })
    }
}

/// The action on untrusted modules.
///
/// # Safety
/// `builder` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_untrusted(
    builder: *mut modhash_host_builder,
    action: c_int,
) -> modhash_status {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_builder(builder, |b| {
            let action = modhash_untrusted_action::parse(action)?;
            b.set(|b| b.untrusted(action))
        })
    }
}

/// The worker executable.
///
/// # Safety
/// `builder` NULL or live; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_worker(
    builder: *mut modhash_host_builder,
    path: *const c_char,
) -> modhash_status {
    // SAFETY: forwarded caller guarantees.
    unsafe { with_builder(builder, |b| b.worker(path_arg(path, "path")?)) }
}

/// Accept an unsealed anchor.
///
/// # Safety
/// `builder` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_allow_unsealed(
    builder: *mut modhash_host_builder,
) -> modhash_status {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_builder(builder, |b| {
            b.set(modhash_load::HostBuilder::allow_unsealed)
        })
    }
}

/// Builds the host, consuming the builder.
///
/// # Safety
/// `builder` NULL or a live builder, not used again; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_build(
    builder: *mut modhash_host_builder,
    out: *mut *mut modhash_host,
) -> modhash_status {
    shield_status(|| {
        if builder.is_null() {
            return Err(Failure::null("builder"));
        }
        // SAFETY: a live builder made by `give`; the caller hands it over.
        let builder = unsafe { Box::from_raw(builder) };
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let host = builder.build()?;
        // SAFETY: `out` checked above.
        unsafe { give(out, Arc::new(host)) }
    })
}

/// Frees a builder.
///
/// # Safety
/// `builder` NULL or a live builder, not used again.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_builder_free(builder: *mut modhash_host_builder) {
    // SAFETY: forwarded caller guarantees.
    unsafe { free(builder) }
}

/// Frees a host.
///
/// # Safety
/// `host` NULL or a live host, not used again.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_free(host: *mut modhash_host) {
    // SAFETY: forwarded caller guarantees.
    unsafe { free(host) }
}

/// Verifies the module at `path`.
///
/// # Safety
/// `host` NULL or live; `path` NULL or a NUL-terminated string; `out`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_verify(
    host: *const modhash_host,
    path: *const c_char,
    out: *mut *mut modhash_verdict,
) -> modhash_status {
    shield_status(|| {
        // SAFETY: forwarded caller guarantees.
        let host = unsafe { borrow(host, "host") }?;
        let verdict = host.verify(path_arg(path, "path")?)?;
        // SAFETY: `out` is checked by `give`.
        unsafe { give(out, verdict) }
    })
}

/// Verifies the module open as `fd`.
///
/// # Safety
/// `host` NULL or live; `fd` an open file descriptor for the duration of the
/// call; `name` NULL or a NUL-terminated string; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_verify_fd(
    host: *const modhash_host,
    fd: c_int,
    name: *const c_char,
    out: *mut *mut modhash_verdict,
) -> modhash_status {
    shield_status(|| {
        // SAFETY: forwarded caller guarantees.
        let host = unsafe { borrow(host, "host") }?;
        if fd < 0 {
            return Err(Failure::argument(format!(
                "fd {fd} is not a file descriptor"
            )));
        }
        // SAFETY: the caller keeps `fd` open during this call, and it is
        // only borrowed, never closed.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let name = if name.is_null() {
            None
        } else {
            Some(path_arg(name, "name")?)
        };
        let verdict = host.verify_fd(fd, name)?;
        // SAFETY: `out` is checked by `give`.
        unsafe { give(out, verdict) }
    })
}

/// Borrows a verdict for a getter; `None` for NULL.
///
/// # Safety
/// `verdict` NULL or live.
unsafe fn verdict_ref<'a>(verdict: *const modhash_verdict) -> Option<&'a VerdictHandle> {
    // SAFETY: forwarded caller guarantees.
    unsafe { verdict.as_ref() }
}

/// How the module is trusted.
///
/// # Safety
/// `verdict` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_verdict_trust(verdict: *const modhash_verdict) -> modhash_trust {
    // SAFETY: forwarded caller guarantees.
    unsafe { verdict_ref(verdict) }.map_or(modhash_trust::MODHASH_UNTRUSTED, |v| v.trust)
}

/// The verdict as text.
///
/// # Safety
/// `verdict` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_verdict_text(verdict: *const modhash_verdict) -> *const c_char {
    // SAFETY: forwarded caller guarantees.
    c_ptr(unsafe { verdict_ref(verdict) }.map(|v| v.text.as_c_str()))
}

/// The signing key, if any.
///
/// # Safety
/// `verdict` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_verdict_signer(verdict: *const modhash_verdict) -> *const c_char {
    // SAFETY: forwarded caller guarantees.
    c_ptr(unsafe { verdict_ref(verdict) }.and_then(|v| v.signer.as_deref()))
}

/// The number of reasons.
///
/// # Safety
/// `verdict` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_verdict_reason_count(verdict: *const modhash_verdict) -> usize {
    // SAFETY: forwarded caller guarantees.
    unsafe { verdict_ref(verdict) }.map_or(0, |v| v.reasons.len())
}

/// Reason `i`.
///
/// # Safety
/// `verdict` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_verdict_reason(
    verdict: *const modhash_verdict,
    i: usize,
) -> *const c_char {
    // SAFETY: forwarded caller guarantees.
    c_ptr(unsafe { verdict_ref(verdict) }.and_then(|v| v.reasons.get(i).map(|r| r.as_c_str())))
}

/// The image digest in hex.
///
/// # Safety
/// `verdict` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_verdict_digest(verdict: *const modhash_verdict) -> *const c_char {
    // SAFETY: forwarded caller guarantees.
    c_ptr(unsafe { verdict_ref(verdict) }.map(|v| v.digest.as_c_str()))
}

/// Frees a verdict.
///
/// # Safety
/// `verdict` NULL or a verdict from `modhash_host_verify*`, not used again.
#[no_mangle]
pub unsafe extern "C" fn modhash_verdict_free(verdict: *mut modhash_verdict) {
    // SAFETY: forwarded caller guarantees.
    unsafe { free(verdict) }
}

/// Reads, seals and judges the module at `path`.
///
/// # Safety
/// `host` NULL or live; `path` NULL or a NUL-terminated string; `out`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_judge(
    host: *const modhash_host,
    path: *const c_char,
    out: *mut *mut modhash_image,
) -> modhash_status {
    shield_status(|| {
        // SAFETY: forwarded caller guarantees.
        let host = unsafe { borrow(host, "host") }?;
        let image = Image::judge(host, path_arg(path, "path")?)?;
        // SAFETY: `out` is checked by `give`.
        unsafe { give(out, image) }
    })
}

/// The image's verdict.
///
/// # Safety
/// `image` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_image_verdict(
    image: *const modhash_image,
) -> *const modhash_verdict {
    // SAFETY: forwarded caller guarantees.
    unsafe { image.as_ref() }.map_or(ptr::null(), |image| image.verdict())
}

/// Applies the policy and dlopens the image.
///
/// # Safety
/// `image` NULL or live, used by this thread only; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn modhash_image_open_library(
    image: *mut modhash_image,
    dlopen_flags: c_int,
    out: *mut *mut modhash_library,
) -> modhash_status {
    shield_status(|| {
        // SAFETY: forwarded caller guarantees.
        let image = unsafe { borrow_mut(image, "image") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let library = image.open_library(dlopen_flags)?;
        // SAFETY: `out` checked above.
        unsafe { give(out, library) }
    })
}

/// Frees an image.
///
/// # Safety
/// `image` NULL or live, not used again.
#[no_mangle]
pub unsafe extern "C" fn modhash_image_free(image: *mut modhash_image) {
    // SAFETY: forwarded caller guarantees.
    unsafe { free(image) }
}

/// The dlopen handle.
///
/// # Safety
/// `library` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_library_handle(library: *const modhash_library) -> *mut c_void {
    // SAFETY: forwarded caller guarantees.
    unsafe { library.as_ref() }.map_or(ptr::null_mut(), Library::handle)
}

/// The library's verdict.
///
/// # Safety
/// `library` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_library_verdict(
    library: *const modhash_library,
) -> *const modhash_verdict {
    // SAFETY: forwarded caller guarantees.
    unsafe { library.as_ref() }.map_or(ptr::null(), |library| &library.verdict)
}

/// Closes a library.
///
/// # Safety
/// `library` NULL or live, not used again, and no symbol from it used again.
#[no_mangle]
pub unsafe extern "C" fn modhash_library_close(library: *mut modhash_library) {
    // SAFETY: forwarded caller guarantees.
    unsafe { free(library) }
}

/// Loads the module at `path`.
///
/// # Safety
/// `host` NULL or live; `path` NULL or a NUL-terminated string; `out`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_load(
    host: *const modhash_host,
    path: *const c_char,
    out: *mut *mut modhash_module,
) -> modhash_status {
    shield_status(|| {
        // SAFETY: forwarded caller guarantees.
        let host = unsafe { borrow(host, "host") }?;
        if out.is_null() {
            return Err(Failure::null("out"));
        }
        let module = host.load(path_arg(path, "path")?)?;
        // SAFETY: `out` checked above.
        unsafe { give(out, module) }
    })
}

/// Calls a module.
///
/// # Safety
/// `module` NULL or live; `input` readable for `in_len` bytes; `out` and
/// `out_len` writable.
#[no_mangle]
pub unsafe extern "C" fn modhash_module_call(
    module: *const modhash_module,
    method: u32,
    input: *const u8,
    in_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> modhash_status {
    shield_status(|| {
        if out.is_null() || out_len.is_null() {
            return Err(Failure::null("out"));
        }
        // SAFETY: both checked above; the caller guarantees they are
        // writable. Cleared first so a failure leaves no stale output.
        unsafe {
            out.write(ptr::null_mut());
            out_len.write(0);
        }
        // SAFETY: forwarded caller guarantees.
        let module = unsafe { borrow(module, "module") }?;
        // SAFETY: forwarded caller guarantees.
        let input = unsafe { bytes_arg(input, in_len, "in") }?;
        let output = module.call(method, input)?;
        if output.is_empty() {
            return Ok(());
        }
        let len = output.len();
        let bytes = Box::into_raw(output.into_boxed_slice()).cast::<u8>();
        // SAFETY: checked and cleared above.
        unsafe {
            out.write(bytes);
            out_len.write(len);
        }
        Ok(())
    })
}

/// Frees call output.
///
/// # Safety
/// `bytes` NULL or output of `modhash_module_call` with its length, not
/// used again.
#[no_mangle]
pub unsafe extern "C" fn modhash_bytes_free(bytes: *mut u8, len: usize) {
    // SAFETY: `bytes` came from `Box<[u8]>::into_raw` with this length.
    unsafe { free(ptr::slice_from_raw_parts_mut(bytes, len)) }
}

/// Whether the module is isolated.
///
/// # Safety
/// `module` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_module_is_isolated(module: *const modhash_module) -> c_int {
    // SAFETY: forwarded caller guarantees.
    unsafe { module.as_ref() }.map_or(0, |m| c_int::from(m.module.is_isolated()))
}

/// The module's name.
///
/// # Safety
/// `module` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_module_name(module: *const modhash_module) -> *const c_char {
    // SAFETY: forwarded caller guarantees.
    c_ptr(unsafe { module.as_ref() }.map(|m| m.name.as_c_str()))
}

/// The module's verdict.
///
/// # Safety
/// `module` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_module_verdict(
    module: *const modhash_module,
) -> *const modhash_verdict {
    // SAFETY: forwarded caller guarantees.
    unsafe { module.as_ref() }.map_or(ptr::null(), |m| &m.verdict)
}

/// Frees a module.
///
/// # Safety
/// `module` NULL or live, not used again.
#[no_mangle]
pub unsafe extern "C" fn modhash_module_free(module: *mut modhash_module) {
    // SAFETY: forwarded caller guarantees.
    unsafe { free(module) }
}

/// The number of tainted entries.
///
/// # Safety
/// `host` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_tainted_count(host: *const modhash_host) -> usize {
    // SAFETY: forwarded caller guarantees.
    let host = unsafe { host.as_ref() };
    shield(0, || host.map_or(0, |host| host.tainted_count()))
}

/// The path of tainted entry `i`.
///
/// # Safety
/// `host` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_tainted_path(
    host: *const modhash_host,
    i: usize,
) -> *const c_char {
    // SAFETY: forwarded caller guarantees.
    let host = unsafe { host.as_ref() };
    shield(ptr::null(), || {
        host.and_then(|host| host.tainted(i))
            .map_or(ptr::null(), |(path, _)| path)
    })
}

/// The verdict of tainted entry `i`.
///
/// # Safety
/// `host` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn modhash_host_tainted_verdict(
    host: *const modhash_host,
    i: usize,
) -> *const modhash_verdict {
    // SAFETY: forwarded caller guarantees.
    let host = unsafe { host.as_ref() };
    shield(ptr::null(), || {
        host.and_then(|host| host.tainted(i))
            .map_or(ptr::null(), |(_, verdict)| verdict)
    })
}
