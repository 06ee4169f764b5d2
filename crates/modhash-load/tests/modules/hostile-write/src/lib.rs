//! A hostile test module: method 0 writes the file whose path is its input. Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_test_hostile_common::modhash_plugin::Error;

fn attack(input: &[u8]) -> Result<Vec<u8>, Error> {
    let path = std::str::from_utf8(input).map_err(|_| Error::from("input is not a path"))?;
    match std::fs::write(path, b"written by a hostile module") {
        Ok(()) => Ok(b"escaped: file written".to_vec()),
        Err(error) => Err(Error::new(format!("write refused: {error}"))),
    }
}

modhash_test_hostile_common::hostile_module!(c"hostile-write", attack);
