//! PATCH path parser (RFC 7644 §3.5.2): never panics; what parses prints back to an equal path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::patch::PatchPath;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = PatchPath::parse(text) else {
        return;
    };
    let printed = path.to_string();
    let reparsed = PatchPath::parse(&printed).expect("a printed path parses");
    assert_eq!(reparsed, path, "round trip of {printed}");
});
