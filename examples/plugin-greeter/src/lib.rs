//! An in-tree plugin: method 0 greets whoever its input names.

use modhash_plugin::{export, Error, Plugin};

struct Greeter {
    greeting: String,
}

impl Plugin for Greeter {
    const NAME: &'static std::ffi::CStr = c"greeter";

    fn create(config: &[u8]) -> Result<Self, Error> {
        let greeting = if config.is_empty() {
            "hello".to_owned()
        } else {
            String::from_utf8(config.to_vec()).map_err(|_| Error::new("config is not UTF-8"))?
        };
        Ok(Greeter { greeting })
    }

    fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        match method {
            0 => Ok(format!("{}, {}!", self.greeting, String::from_utf8_lossy(input)).into_bytes()),
            other => Err(Error::new(format!("unknown method {other}"))),
        }
    }
}

export!(Greeter);
