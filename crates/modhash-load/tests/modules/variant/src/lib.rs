//! A test module. Method 0 returns `MARKER`; the loader's tests copy the
//! built library and patch the marker's last byte to make a second, different
//! module, so they can tell which bytes actually run. Method 1 echoes, method
//! 2 panics. Built in release mode it is about 400 KB, the size of a typical
//! plugin, which the benchmark relies on.

use modhash_plugin::{export, Error, Plugin};

/// Read through `black_box` so the bytes are loaded from the mapped image,
/// never folded into code.
#[used]
static MARKER: [u8; 24] = *b"modhash-test-variant:  A";

struct Variant;

impl Plugin for Variant {
    const NAME: &'static std::ffi::CStr = c"variant";

    fn create(config: &[u8]) -> Result<Self, Error> {
        match config {
            b"refuse" => Err("refused by configuration".into()),
            _ => Ok(Variant),
        }
    }

    fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        match method {
            0 => Ok(std::hint::black_box(&MARKER).to_vec()),
            1 => Ok(input.to_vec()),
            #[allow(clippy::panic, reason = "the loader tests need a module that panics")]
            2 => panic!("method 2 always panics"),
            other => Err(Error::new(format!("unknown method {other}"))),
        }
    }
}

export!(Variant);
