//! Sealed memfd images: the bytes that are hashed are the bytes that are
//! mapped.
