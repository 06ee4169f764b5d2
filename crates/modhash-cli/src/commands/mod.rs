//! One module per verb.

pub mod hash;
