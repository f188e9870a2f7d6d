//! Filter parser (RFC 7644 §3.4.2.2): never panics; what parses prints back to an equal
//! filter; evaluation and SQL translation for both dialects never panic either, and the store
//! translates exactly the filters the check accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::filter::Filter;
use scimd::scim::filter::check::validate;
use scimd::store::filter_sql::{Dialect, GROUPS, SqlBuilder, USERS, filter_sql};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = text.parse::<Filter>() else {
        return;
    };
    let printed = filter.to_string();
    let reparsed: Filter = printed.parse().expect("a printed filter parses");
    assert_eq!(reparsed, filter, "round trip of {printed}");
    let user = serde_json::json!({"userName": "a@b.co", "emails": [{"value": "a@b.co", "type": "work"}],
                                  "name": {"givenName": "A"}, "active": true});
    let _ = filter.matches(user.as_object().expect("object"), &|_| false);
    for dialect in [Dialect::Postgres, Dialect::Sqlite] {
        for table in [&USERS, &GROUPS] {
            let translated = filter_sql(&mut SqlBuilder::new(dialect, 2), table, &filter);
            let fits = validate(&filter, table.resource).is_ok();
            assert_eq!(fits, translated.is_ok(), "check and store disagree on {printed}");
        }
    }
});
