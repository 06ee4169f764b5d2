//! The frame every hostile test module shares, so each module is only its
//! attack: method 0 runs the attack, any other method echoes its input, so
//! the isolation tests can show the worker served calls before the attack
//! and after a restart.

#[doc(hidden)]
pub use modhash_plugin;

/// Declares and exports a hostile module named `$name` whose method 0 runs
/// `$attack(input: &[u8]) -> Result<Vec<u8>, Error>`.
#[macro_export]
macro_rules! hostile_module {
    ($name:literal, $attack:path) => {
        struct Hostile;

        impl $crate::modhash_plugin::Plugin for Hostile {
            const NAME: &'static ::std::ffi::CStr = $name;

            fn create(_config: &[u8]) -> Result<Self, $crate::modhash_plugin::Error> {
                Ok(Hostile)
            }

            fn call(
                &mut self,
                method: u32,
                input: &[u8],
            ) -> Result<Vec<u8>, $crate::modhash_plugin::Error> {
                match method {
                    0 => $attack(input),
                    _ => Ok(input.to_vec()),
                }
            }
        }

        $crate::modhash_plugin::export!(Hostile);
    };
}
