//! An out-of-tree plugin, built and shipped by a third party: it cannot be
//! in the host's manifest, so its vendor signs it (`modhash sign`) and the
//! host trusts the vendor's key. Method 0 counts the words of its input.

use modhash_plugin::{export, Error, Plugin};

struct WordCount;

impl Plugin for WordCount {
    const NAME: &'static std::ffi::CStr = c"wordcount";

    fn create(_config: &[u8]) -> Result<Self, Error> {
        Ok(WordCount)
    }

    fn call(&mut self, method: u32, input: &[u8]) -> Result<Vec<u8>, Error> {
        match method {
            0 => {
                let text = String::from_utf8_lossy(input);
                Ok(text.split_whitespace().count().to_string().into_bytes())
            }
            other => Err(Error::new(format!("unknown method {other}"))),
        }
    }
}

export!(WordCount);
