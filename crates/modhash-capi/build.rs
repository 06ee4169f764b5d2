//! Gives libmodhash.so a SONAME, so that programs linked with -lmodhash
//! record `libmodhash.so.<abi>` and keep working as the library is updated
//! within one ABI. Before 1.0 every minor version may change the ABI, so it
//! is part of the name.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmodhash.so.{abi}");
    println!("cargo:rerun-if-changed=build.rs");
}
