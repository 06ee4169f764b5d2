//! A hostile test module whose constructor opens a network socket: code
//! that runs at `dlopen`, before the host ever calls the module. The
//! isolation tests expect the worker to be locked down already, so loading
//! fails as "denied" and the host survives.

use modhash_plugin::{export, Error, Plugin};

/// Runs when the dynamic loader maps the module.
extern "C" fn on_load() {
    if let Ok(socket) = std::net::UdpSocket::bind("127.0.0.1:0") {
        // Escaped the sandbox: make it visible in the worker's stderr.
        eprintln!("escaped: constructor bound {:?}", socket.local_addr());
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

struct Hostile;

impl Plugin for Hostile {
    const NAME: &'static std::ffi::CStr = c"hostile-constructor";

    fn create(_config: &[u8]) -> Result<Self, Error> {
        Ok(Hostile)
    }

    fn call(&mut self, _method: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(input.to_vec())
    }
}

export!(Hostile);
