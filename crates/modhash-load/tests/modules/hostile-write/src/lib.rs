//! A hostile test module: method 0 writes the file whose path is its input. Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_plugin::{export, Error, Plugin};

struct Hostile;

impl Plugin for Hostile {
    const NAME: &'static std::ffi::CStr = c"hostile-write";

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

fn attack(input: &[u8]) -> Result<Vec<u8>, Error> {
    let path = std::str::from_utf8(input).map_err(|_| Error::from("input is not a path"))?;
    match std::fs::write(path, b"written by a hostile module") {
        Ok(()) => Ok(b"escaped: file written".to_vec()),
        Err(error) => Err(Error::new(format!("write refused: {error}"))),
    }
}

export!(Hostile);
