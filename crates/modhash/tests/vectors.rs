//! The profile vectors in `tests/vectors/` (see its README): every digest
//! the reference implementation computed, and every refusal.

use std::path::Path;

use modhash::Profile;

#[test]
fn every_vector_matches_the_reference_implementation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
    let mut checked = 0;
    for line in expected.lines().filter(|l| !l.starts_with('#')) {
        let (profile, rest) = line.split_once(' ').unwrap();
        let (want, file) = rest.split_once("  ").unwrap();
        let profile: Profile = profile.parse().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let got = profile.digest(&bytes);
        match want {
            "error" => assert!(
                got.is_err(),
                "{profile} {file} should be refused, got {got:?}"
            ),
            hex => assert_eq!(got.unwrap().to_hex(), hex, "{profile} {file}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 36);
}

#[test]
fn elf_image_survives_every_strip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let digest = |f: &str| {
        Profile::ElfImage
            .digest(&std::fs::read(dir.join(f)).unwrap())
            .unwrap()
    };
    let original = digest("tiny.so");
    for stripped in [
        "tiny-strip-all.so",
        "tiny-strip-debug.so",
        "tiny-llvm-strip.so",
        "tiny-debuglink.so",
    ] {
        assert_eq!(digest(stripped), original, "{stripped}");
    }
}
