//! An in-tree plugin: method 0 returns the FNV-1a 64 checksum of its input
//! as 16 hex digits.

use modhash_plugin::{export, Error, Plugin};

struct Checksum;

impl Plugin for Checksum {
    const NAME: &'static std::ffi::CStr = c"checksum";

    fn create(_config: &[u8]) -> Result<Self, Error> {
        Ok(Checksum)
    }

    fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        match method {
            0 => {
                let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                Ok(format!("{hash:016x}").into_bytes())
            }
            other => Err(Error::new(format!("unknown method {other}"))),
        }
    }
}

export!(Checksum);
