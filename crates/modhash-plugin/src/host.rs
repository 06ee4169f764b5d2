//! The host side of the ABI: check a module's table, create an instance,
//! call it.
//!
//! This is the only code that calls through a [`PluginV1`] table, shared by
//! the in-process loader and the isolated worker so both treat a module
//! exactly alike.

use std::ffi::{c_void, CStr};
use std::fmt;
use std::ptr::NonNull;

use crate::{PluginV1, Sink, ABI_VERSION, STATUS_ERROR, STATUS_OK, STATUS_PANIC};

/// Why a module's table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AbiError {
    /// The entry point returned a null pointer.
    #[error("the module's `modhash_plugin_v1` returned no table; the module is broken")]
    NullTable,
    /// A table of another ABI version.
    #[error("the module implements ABI version {found}, this host speaks version {expected}; rebuild the module against this modhash-plugin")]
    Version {
        /// The table's version.
        found: u32,
        /// [`ABI_VERSION`].
        expected: u32,
    },
    /// A table smaller than version 1's.
    #[error("the module's table is {found} bytes, version {ABI_VERSION} needs at least {needed}; the module is broken")]
    TableSize {
        /// The table's `table_size`.
        found: u32,
        /// `size_of::<PluginV1>()`.
        needed: usize,
    },
    /// The name pointer is null or not UTF-8.
    #[error("the module's name is missing or not UTF-8; the module is broken")]
    BadName,
}

/// What went wrong in a module's `create` or `call`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The module returned an error.
    Error,
    /// The module panicked (or threw) and caught it at the boundary.
    Panic,
    /// The module returned a status the ABI does not define.
    UnknownStatus(i32),
}

/// A module's refusal: its kind and the module's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The module's message, lossily decoded as UTF-8.
    pub message: String,
}

impl Failure {
    fn describe(&self) -> String {
        match self.kind {
            FailureKind::Error => format!("module error: {}", self.message),
            FailureKind::Panic => self.message.clone(),
            FailureKind::UnknownStatus(status) => {
                format!(
                    "module returned undefined status {status}: {}",
                    self.message
                )
            }
        }
    }
}

/// A validated version-1 table.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    table: NonNull<PluginV1>,
}

// SAFETY: a table is immutable data inside a loaded library (see
// `PluginV1`'s `Sync`), and `Table::from_raw`'s caller keeps the library
// loaded, so any thread may read it.
unsafe impl Send for Table {}
// SAFETY: as above; `Table` exposes only shared reads.
unsafe impl Sync for Table {}

impl Table {
    /// Checks the table a module's entry point returned.
    ///
    /// # Safety
    /// `ptr` must be null or point at a table whose first two fields are
    /// readable; if those say version 1 of sufficient size, the whole
    /// [`PluginV1`] must be readable and its function pointers and name must
    /// follow the ABI. The library holding it must stay loaded for as long as
    /// the returned `Table`, and every [`Instance`] made from it, exists.
    pub unsafe fn from_raw(ptr: *const PluginV1) -> Result<Self, AbiError> {
        let table = NonNull::new(ptr.cast_mut()).ok_or(AbiError::NullTable)?;
        // SAFETY: the caller guarantees the leading fields are readable; read
        // them before trusting the rest of the layout.
        let (version, size) = unsafe {
            let head = table.as_ptr();
            ((*head).abi_version, (*head).table_size)
        };
        if version != ABI_VERSION {
            return Err(AbiError::Version {
                found: version,
                expected: ABI_VERSION,
            });
        }
        let needed = std::mem::size_of::<PluginV1>();
        if usize::try_from(size).map_or(true, |size| size < needed) {
            return Err(AbiError::TableSize {
                found: size,
                needed,
            });
        }
        let this = Self { table };
        this.name()?;
        Ok(this)
    }

    fn get(&self) -> &PluginV1 {
        // SAFETY: checked by `from_raw`, whose caller keeps the library
        // loaded while `self` exists.
        unsafe { self.table.as_ref() }
    }

    /// The module's name.
    pub fn name(&self) -> Result<&str, AbiError> {
        let name = self.get().name;
        if name.is_null() {
            return Err(AbiError::BadName);
        }
        // SAFETY: the ABI makes `name` a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(name) };
        name.to_str().map_err(|_| AbiError::BadName)
    }

    /// Creates an instance with `config`.
    pub fn create(&self, config: &[u8]) -> Result<Instance, Failure> {
        let mut instance: *mut c_void = std::ptr::null_mut();
        let mut err = Buffer::default();
        let mut sink = err.sink();
        // SAFETY: `config` is valid for the call, `instance` is a writable
        // slot and `sink` points at a live buffer; the table was validated.
        let status =
            unsafe { (self.get().create)(config.as_ptr(), config.len(), &mut instance, &mut sink) };
        err.into_result(status)?;
        let instance = NonNull::new(instance).ok_or_else(|| Failure {
            kind: FailureKind::Error,
            message: "create succeeded but returned no instance; the module is broken".into(),
        })?;
        Ok(Instance {
            table: *self,
            instance,
        })
    }
}

/// An instance created by a module. Dropping it calls the module's
/// `destroy`.
#[derive(Debug)]
pub struct Instance {
    table: Table,
    instance: NonNull<c_void>,
}

// SAFETY: the ABI lets the host call an instance from any thread as long as
// calls do not overlap; `call` takes `&mut self`, so they cannot.
unsafe impl Send for Instance {}

impl Instance {
    /// Runs `method` on `input`.
    pub fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Failure> {
        let mut out = Buffer::default();
        let mut sink = out.sink();
        // SAFETY: the instance came from this table's `create` and is not yet
        // destroyed; `&mut self` rules out concurrent calls; `input` and the
        // sink are valid for the call.
        let status = unsafe {
            (self.table.get().call)(
                self.instance.as_ptr(),
                method,
                input.as_ptr(),
                input.len(),
                &mut sink,
            )
        };
        out.into_result(status)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: made by this table's `create`, destroyed exactly once here.
        unsafe { (self.table.get().destroy)(self.instance.as_ptr()) }
    }
}

/// The host-owned buffer behind a [`Sink`].
#[derive(Default)]
struct Buffer(Vec<u8>);

impl Buffer {
    fn sink(&mut self) -> Sink {
        Sink {
            ctx: std::ptr::from_mut(&mut self.0).cast::<c_void>(),
            write: append,
        }
    }

    fn into_result(self, status: i32) -> Result<Vec<u8>, Failure> {
        let kind = match status {
            STATUS_OK => return Ok(self.0),
            STATUS_ERROR => FailureKind::Error,
            STATUS_PANIC => FailureKind::Panic,
            other => FailureKind::UnknownStatus(other),
        };
        Err(Failure {
            kind,
            message: String::from_utf8_lossy(&self.0).into_owned(),
        })
    }
}

/// The sink callback: appends to the `Vec<u8>` behind `ctx`.
unsafe extern "C" fn append(ctx: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: `ctx` is the `Vec<u8>` of a `Buffer` that outlives the call
    // the sink was made for.
    let Some(buffer) = (unsafe { ctx.cast::<Vec<u8>>().as_mut() }) else {
        return;
    };
    if data.is_null() || len == 0 {
        return;
    }
    // SAFETY: the ABI requires `data` to be readable for `len` bytes.
    buffer.extend_from_slice(unsafe { std::slice::from_raw_parts(data, len) });
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Buffer({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Plugin};

    struct Echo {
        prefix: Vec<u8>,
    }

    impl Plugin for Echo {
        const NAME: &'static CStr = c"echo";

        fn create(config: &[u8]) -> Result<Self, Error> {
            if config == b"refuse" {
                return Err("configuration refused".into());
            }
            Ok(Echo {
                prefix: config.to_vec(),
            })
        }

        fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
            match method {
                0 => Ok([self.prefix.as_slice(), input].concat()),
                1 => panic!("asked to panic"),
                other => Err(Error::new(format!("unknown method {other}"))),
            }
        }
    }

    static ECHO: PluginV1 = PluginV1::new::<Echo>();

    fn table() -> Table {
        // SAFETY: a static table built by `PluginV1::new`.
        unsafe { Table::from_raw(&ECHO) }.expect("valid table")
    }

    #[test]
    fn calls_reach_the_plugin_and_outputs_come_back() {
        let table = table();
        assert_eq!(table.name(), Ok("echo"));
        let mut instance = table.create(b"> ").expect("create");
        assert_eq!(instance.call(0, b"hi"), Ok(b"> hi".to_vec()));
        assert_eq!(instance.call(0, b""), Ok(b"> ".to_vec()));
    }

    #[test]
    fn errors_and_panics_become_failures_not_unwinds() {
        let table = table();
        let failure = table.create(b"refuse").expect_err("refused");
        assert_eq!(failure.kind, FailureKind::Error);
        assert_eq!(failure.message, "configuration refused");

        let mut instance = table.create(b"").expect("create");
        let failure = instance.call(7, b"").expect_err("unknown method");
        assert_eq!(failure.to_string(), "module error: unknown method 7");
        let failure = instance.call(1, b"").expect_err("panic");
        assert_eq!(failure.kind, FailureKind::Panic);
        assert_eq!(failure.message, "module panicked: asked to panic");
        // The instance is still usable after a caught panic.
        assert_eq!(instance.call(0, b"ok"), Ok(b"ok".to_vec()));
    }

    #[test]
    fn tables_of_other_versions_and_sizes_are_refused() {
        let other = PluginV1 {
            abi_version: 2,
            ..PluginV1::new::<Echo>()
        };
        // SAFETY: a valid table with a different version field.
        let err = unsafe { Table::from_raw(&other) }.expect_err("version");
        assert_eq!(
            err,
            AbiError::Version {
                found: 2,
                expected: 1
            }
        );
        let small = PluginV1 {
            table_size: 8,
            ..PluginV1::new::<Echo>()
        };
        // SAFETY: a valid table with a smaller size field.
        let err = unsafe { Table::from_raw(&small) }.expect_err("size");
        assert!(matches!(err, AbiError::TableSize { found: 8, .. }));
        // SAFETY: null is allowed.
        let err = unsafe { Table::from_raw(std::ptr::null()) }.expect_err("null");
        assert_eq!(err, AbiError::NullTable);
    }
}
