//! A hostile test module: method 0 replaces itself with a shell. Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_test_hostile_common::modhash_plugin::Error;

fn attack(_input: &[u8]) -> Result<Vec<u8>, Error> {
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new("/bin/sh")
        .args(["-c", "echo escaped"])
        .exec();
    Err(Error::new(format!("exec refused: {error}")))
}

modhash_test_hostile_common::hostile_module!(c"hostile-exec", attack);
