//! A hostile test module: method 0 forks a child process. Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_test_hostile_common::modhash_plugin::Error;

fn attack(_input: &[u8]) -> Result<Vec<u8>, Error> {
    // SAFETY: fork has no memory-safety preconditions; the child would
    // return straight into the module (the sandbox stops it first).
    let pid = unsafe { libc::fork() };
    Ok(format!("fork returned {pid}").into_bytes())
}

modhash_test_hostile_common::hostile_module!(c"hostile-fork", attack);
