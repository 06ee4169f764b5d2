//! One module per verb.

pub mod hash;
pub mod manifest;
pub mod root;
