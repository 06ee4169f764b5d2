//! libmodhash: the C API of modhash. The interface is `include/modhash.h`;
//! this crate is a thin layer of opaque handles over the Rust host API.
