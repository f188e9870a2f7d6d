//! PATCH application: any request body either fails cleanly or yields a document that the
//! schema accepts; it never panics, on users or on groups.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::normalize::normalize_resource;
use scimd::scim::patch::{apply, parse_request};
use scimd::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(body)) = serde_json::from_slice(data) else {
        return;
    };
    let Ok(ops) = parse_request(&body) else {
        return;
    };
    let user = serde_json::json!({
        "userName": "a@b.co", "displayName": "A", "name": {"givenName": "A", "familyName": "B"},
        "emails": [{"value": "a@b.co", "type": "work", "primary": true}],
        "phoneNumbers": [{"value": "1", "type": "mobile"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "manager": {"value": "m"}}
    });
    let user = user.as_object().expect("object");
    if let Ok(outcome) = apply(&USER_RESOURCE, user, &ops) {
        // Whatever PATCH produces must still be a valid user document.
        let mut doc = outcome.doc;
        doc.remove("password");
        normalize_resource(&USER_RESOURCE, doc).expect("a patched user normalises");
    }
    let group = serde_json::json!({"displayName": "G"});
    let _ = apply(&GROUP_RESOURCE, group.as_object().expect("object"), &ops);
});
