//! A hostile test module: method 0 allocates, and touches, memory without bound. Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_test_hostile_common::modhash_plugin::Error;

fn attack(_input: &[u8]) -> Result<Vec<u8>, Error> {
    let mut hoard = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![1u8; 16 << 20]));
    }
}

modhash_test_hostile_common::hostile_module!(c"hostile-alloc", attack);
