//! One module per verb.

pub mod diff;
pub mod hash;
pub mod inspect;
pub mod manifest;
pub mod proof;
pub mod root;
pub mod seal;
pub mod verify;
