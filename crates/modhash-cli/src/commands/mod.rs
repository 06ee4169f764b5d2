//! One module per verb.

pub mod diff;
pub mod hash;
pub mod inspect;
pub mod kernel;
pub mod key;
pub mod keygen;
pub mod load;
pub mod manifest;
pub mod proof;
pub mod root;
pub mod seal;
pub mod sign;
pub mod strip;
pub mod verify;
