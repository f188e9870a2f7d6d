//! Document helpers shared by every resource type: a resource held as a JSON object
//! (`serde_json::Map`), as `normalize` returns it and the store keeps it.
//!
//! These know nothing of Users or Groups, so `user`, `group`, `patch` and `filter` can all
//! use them without depending on one another.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

type Doc = Map<String, Value>;

/// Case-insensitive key lookup (RFC 7643 §2.1: attribute names are case-insensitive),
/// trying the exact key first (the common, canonical case).
pub fn get_ci<'a>(map: &'a Doc, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// RFC 3339 with milliseconds, UTC: `2024-12-03T23:13:14.109Z` (`meta.created` and
/// `meta.lastModified`, RFC 7643 §3.1).
pub fn timestamp(ms: i64) -> String {
    let mut out = Vec::with_capacity(24);
    write_timestamp(ms, &mut out);
    // Only ASCII digits and punctuation are written.
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends [`timestamp`]'s text to `out`, without a formatter: a page of users writes two
/// per user. Years outside 0000-9999 (never a server clock's) go through chrono.
pub fn write_timestamp(ms: i64, out: &mut Vec<u8>) {
    const MS_PER_DAY: i64 = 86_400_000;
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    if !(0..=9999).contains(&year) {
        let text = DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let fields = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (in_day / 3_600_000, 2, b':'),
        (in_day / 60_000 % 60, 2, b':'),
        (in_day / 1000 % 60, 2, b'.'),
        (in_day % 1000, 3, b'Z'),
    ];
    for (value, width, after) in fields {
        for place in (0..width).rev() {
            let digit = value / 10_i64.pow(place) % 10;
            out.push(b'0' + digit as u8);
        }
        out.push(after);
    }
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01, by
/// H. Hinnant's `civil_from_days`: eras of 400 years (146,097 days) starting on March 1, so
/// the leap day ends each year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The reference's PUT: "sets the values of the parameters provided and leaving all other
/// properties of the user unchanged", for users and groups alike. Each attribute given
/// replaces the stored one; an extension object is a container, so its attributes merge one
/// by one; `null` clears.
pub fn merge(current: &Doc, incoming: Doc) -> Doc {
    let mut merged = current.clone();
    for (key, value) in incoming {
        match (merged.get_mut(&key), value) {
            (_, Value::Null) => {
                merged.remove(&key);
            }
            (Some(Value::Object(stored)), Value::Object(given)) if key.starts_with("urn:") => {
                for (attr, v) in given {
                    if v.is_null() {
                        stored.remove(&attr);
                    } else {
                        stored.insert(attr, v);
                    }
                }
                if stored.is_empty() {
                    merged.remove(&key);
                }
            }
            (_, value) => {
                merged.insert(key, strip_nulls(value));
            }
        }
    }
    merged
}

/// Null members of an object mean "unassigned" (RFC 7644 §3.5.1): they are not stored.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn get_ci_prefers_the_exact_key_and_otherwise_ignores_case() {
        let map = doc(json!({"userName": 1, "USERNAME": 2, "Emails": 3}));
        let cases = [
            ("userName", Some(1)),
            ("USERNAME", Some(2)),
            ("emails", Some(3)),
            ("EMAILS", Some(3)),
            ("title", None),
        ];
        for (key, want) in cases {
            assert_eq!(get_ci(&map, key), want.map(Value::from).as_ref(), "{key}");
        }
    }

    #[test]
    fn timestamps_are_rfc_3339_utc_with_milliseconds() {
        assert_eq!(timestamp(1_733_267_594_109), "2024-12-03T23:13:14.109Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them_across_leap_days_centuries_and_eras() {
        let chrono = |ms: i64| {
            DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        };
        let day = 86_400_000_i64;
        let mut cases = vec![
            0,
            -1,
            1,
            day - 1,
            -day,
            951_782_400_000,     // 2000-02-29 (a leap day of a 400th year)
            4_107_456_000_000,   // 2100-02-28 (2100 is no leap year)
            253_402_300_799_999, // 9999-12-31T23:59:59.999Z, the last year written here
            253_402_300_800_000, // 10000-01-01: chrono's
            -62_167_219_200_000, // 0000-01-01
            -62_167_219_200_001, // before year 0: chrono's
            i64::MAX,
            i64::MIN,
        ];
        // Every day of 1999-2001 at a varying time, then a stride over 0000-9999.
        let start = 915_148_800_000;
        cases.extend((0..3 * 366).map(|d| start + d * day + d * 3_723_001 % day));
        cases.extend((0..20_000).map(|i| -62_167_219_200_000 + i * 15_778_800_777));
        for ms in cases {
            assert_eq!(timestamp(ms), chrono(ms), "{ms}");
        }
    }

    #[test]
    fn merge_sets_given_attributes_and_keeps_the_rest() {
        let current = doc(json!({
            "userName": "a@x.co", "displayName": "A", "title": "Boss",
            "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes", "team": "red"}
        }));
        let incoming = doc(json!({
            "userName": "b@x.co", "title": null,
            "urn:omni:params:1.0:UserAttribute": {"team": null, "level": "3"}
        }));
        let merged = merge(&current, incoming);
        assert_eq!(
            Value::Object(merged),
            json!({
                "userName": "b@x.co", "displayName": "A",
                "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes", "level": "3"}
            })
        );
    }

    #[test]
    fn merge_drops_an_extension_emptied_by_nulls_and_nested_nulls() {
        let current = doc(json!({"urn:x:ext": {"a": 1}}));
        let merged = merge(
            &current,
            doc(json!({"urn:x:ext": {"a": null}, "name": {"givenName": "G", "familyName": null}})),
        );
        assert_eq!(Value::Object(merged), json!({"name": {"givenName": "G"}}));
    }
}
