//! A hostile test module: method 0 spins for ever. Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_test_hostile_common::modhash_plugin::Error;

fn attack(_input: &[u8]) -> Result<Vec<u8>, Error> {
    loop {
        std::hint::black_box(());
    }
}

modhash_test_hostile_common::hostile_module!(c"hostile-loop", attack);
