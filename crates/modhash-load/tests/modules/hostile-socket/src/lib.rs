//! A hostile test module: method 0 opens a network socket. Method 1 echoes its input,
//! so tests can show the worker served calls before the attack and after a
//! restart. The isolation tests expect the host to get an error, and to
//! survive.

use modhash_test_hostile_common::modhash_plugin::Error;

fn attack(_input: &[u8]) -> Result<Vec<u8>, Error> {
    match std::net::UdpSocket::bind("127.0.0.1:0") {
        Ok(socket) => Ok(format!("escaped: bound {:?}", socket.local_addr()).into_bytes()),
        Err(error) => Err(Error::new(format!("socket refused: {error}"))),
    }
}

modhash_test_hostile_common::hostile_module!(c"hostile-socket", attack);
