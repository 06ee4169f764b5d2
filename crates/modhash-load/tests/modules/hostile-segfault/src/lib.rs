//! A hostile test module: method 0 writes through an invalid pointer (SIGSEGV). Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_test_hostile_common::modhash_plugin::Error;

fn attack(_input: &[u8]) -> Result<Vec<u8>, Error> {
    let target = std::ptr::with_exposed_provenance_mut::<u8>(8);
    // SAFETY: not safe at all, on purpose: the write faults, and the test
    // checks that the host survives it.
    unsafe { target.write_volatile(1) };
    Ok(b"still alive".to_vec())
}

modhash_test_hostile_common::hostile_module!(c"hostile-segfault", attack);
