//! libcamera's IPA module signatures.
//!
//! libcamera signs each in-tree IPA module at build time with a key made for
//! that build and ships `ipa_x.so.sign` next to it: an RSA PKCS#1 v1.5
//! signature over SHA-256 of the whole module file. The public key is
//! compiled into libcamera.so as the DER SubjectPublicKeyInfo at the dynamic
//! symbol [`PUBLIC_KEY_SYMBOL`]; [`extract_key`] reads it from there.

use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

use super::keyring::KeyAlgorithm;
use super::{Keyring, Scheme, Signer};

/// A module's signature is `<module>.sign`.
pub const EXTENSION: &str = "sign";

/// The dynamic symbol of libcamera.so that holds the IPA public key
/// (`libcamera::IPAManager::publicKeyData`).
pub const PUBLIC_KEY_SYMBOL: &str = "_ZN9libcamera10IPAManager14publicKeyData_E";

/// Why a libcamera `.sign` file did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LibcameraError {
    /// The ring has no RSA public key to check it with.
    #[error("the key ring holds no RSA public key; extract libcamera's with `modhash key extract --libcamera LIBCAMERA_SO`")]
    NoKey,
    /// No RSA key of the ring verifies it.
    #[error("RSA signature does not verify with any of the {tried} RSA key(s) in the key ring: the module changed after signing, the signature is for another module, or it was made with another key")]
    BadSignature {
        /// How many RSA keys were tried.
        tried: usize,
    },
}

/// Verifies a `.sign` file over `module` with the ring's RSA keys.
pub(crate) fn verify(
    ring: &Keyring,
    module: &[u8],
    signature: &[u8],
) -> Result<Signer, LibcameraError> {
    let mut tried = 0;
    for key in ring
        .public_keys
        .iter()
        .filter(|k| k.algorithm == KeyAlgorithm::Rsa)
    {
        tried += 1;
        if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.key_bytes)
            .verify(module, signature)
            .is_ok()
        {
            return Ok(Signer::new(Scheme::Libcamera, key.id.clone(), None));
        }
    }
    if tried == 0 {
        Err(LibcameraError::NoKey)
    } else {
        Err(LibcameraError::BadSignature { tried })
    }
}

#[cfg(feature = "extract")]
pub use extract::{extract_key, ExtractKeyError};

#[cfg(feature = "extract")]
mod extract {
    use object::{Object, ObjectSegment, ObjectSymbol};

    use super::PUBLIC_KEY_SYMBOL;

    /// Why libcamera's public key could not be read from a file.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum ExtractKeyError {
        /// Not an ELF file object can read.
        #[error("not an ELF shared object: {0}")]
        NotElf(String),
        /// No such dynamic symbol.
        #[error("no dynamic symbol {PUBLIC_KEY_SYMBOL}; this is not libcamera.so, or a libcamera built without IPA module signing")]
        NoSymbol,
        /// The symbol's address range is not backed by file bytes.
        #[error("symbol {PUBLIC_KEY_SYMBOL} at {address:#x} ({size} bytes) lies in no loadable segment's file bytes; the file is corrupt")]
        Unmapped {
            /// The symbol's value.
            address: u64,
            /// The symbol's size.
            size: u64,
        },
        /// The bytes are not a public key.
        #[error("the bytes at {PUBLIC_KEY_SYMBOL} are not a DER SubjectPublicKeyInfo: {0}")]
        NotAKey(String),
    }

    /// The DER SubjectPublicKeyInfo libcamera.so verifies IPA modules with:
    /// the bytes of the dynamic symbol [`PUBLIC_KEY_SYMBOL`], its address
    /// mapped to a file offset through the program headers (the loader's
    /// view, so it works on stripped files too) and its size taken from the
    /// symbol table.
    pub fn extract_key(libcamera_so: &[u8]) -> Result<Vec<u8>, ExtractKeyError> {
        let file = object::File::parse(libcamera_so)
            .map_err(|e| ExtractKeyError::NotElf(e.to_string()))?;
        let symbol = file
            .dynamic_symbols()
            .find(|s| s.name_bytes().ok() == Some(PUBLIC_KEY_SYMBOL.as_bytes()))
            .ok_or(ExtractKeyError::NoSymbol)?;
        let (address, size) = (symbol.address(), symbol.size());
        let bytes = file
            .segments()
            .find_map(|segment| segment.data_range(address, size).ok().flatten())
            .filter(|bytes| !bytes.is_empty())
            .ok_or(ExtractKeyError::Unmapped { address, size })?;
        // Parse to be sure, and so the key file holds exactly one key.
        crate::signature::Keyring::new()
            .add_file(bytes)
            .map_err(|e| ExtractKeyError::NotAKey(e.to_string()))?;
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &[u8] = include_bytes!("testdata/module.bin");
    const SIGN: &[u8] = include_bytes!("testdata/module.bin.sign");
    const KEY: &[u8] = include_bytes!("testdata/rsa2048.pub.der");

    #[test]
    fn sign_file_verifies_with_the_spki_key() {
        let ring = Keyring::from_files(&[KEY]).unwrap();
        let signer = verify(&ring, MODULE, SIGN).unwrap();
        assert_eq!(signer.id(), super::super::spki_key_id(KEY));
        assert_eq!(signer.scheme(), Scheme::Libcamera);
    }

    #[test]
    fn changed_module_wrong_key_and_truncation_are_refused() {
        let ring = Keyring::from_files(&[KEY]).unwrap();
        let mut changed = MODULE.to_vec();
        changed[0] ^= 1;
        assert_eq!(
            verify(&ring, &changed, SIGN),
            Err(LibcameraError::BadSignature { tried: 1 })
        );
        assert_eq!(
            verify(&ring, MODULE, &SIGN[..SIGN.len() - 1]),
            Err(LibcameraError::BadSignature { tried: 1 })
        );
        let certs_only =
            Keyring::from_files(&[include_bytes!("testdata/rsa2048.crt.pem")]).unwrap();
        assert_eq!(
            verify(&certs_only, MODULE, SIGN),
            Err(LibcameraError::NoKey)
        );
    }
}
