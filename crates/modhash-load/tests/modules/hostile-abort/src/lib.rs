//! A hostile test module: method 0 aborts the process (SIGABRT). Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_plugin::{export, Error, Plugin};

struct Hostile;

impl Plugin for Hostile {
    const NAME: &'static std::ffi::CStr = c"hostile-abort";

    fn create(_config: &[u8]) -> Result<Self, Error> {
        Ok(Hostile)
    }

    fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        match method {
            0 => attack(input),
            _ => Ok(input.to_vec()),
        }
    }
}

fn attack(_input: &[u8]) -> Result<Vec<u8>, Error> {
    std::process::abort()
}

export!(Hostile);
