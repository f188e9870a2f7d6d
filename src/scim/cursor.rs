//! RFC 9865 cursors: opaque, signed, bound to their query, and short-lived.
//!
//! A cursor names a position in a list's order (a keyset of up to 32 bytes: a resource's
//! `created_at` and `id`, or a membership's group and member) and a direction: after it
//! (`nextCursor`) or before it (`previousCursor`). It is sealed with an
//! HMAC-SHA256 under the server's cursor key, so a client can neither forge nor alter one;
//! it carries when it expires (`cursorTimeout`, announced in `ServiceProviderConfig`) and a
//! digest of the query it belongs to (organization, resource type, filter), so it cannot be
//! replayed against another query. The text is base64url without padding: only RFC 3986
//! unreserved characters, as RFC 9865 §2 requires.
//!
//! Errors carry RFC 9865's own `scimType`s: `invalidCursor` for anything that is not a
//! cursor of this query, `expiredCursor` for a genuine one past its time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{ScimError, ScimType};

/// A position in a list's order, and which side of it a page lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The keyset of the row at the position, as the list encodes it ([`Position::creation`],
    /// [`Position::pair`]); the query digest names the list, so keys of two lists never mix.
    pub key: [u8; 32],
    /// The page is the one before this position (`previousCursor`); else the one after.
    pub backward: bool,
}

impl Position {
    /// A resource list's position: (created_at, id).
    pub fn creation(created_at: i64, id: Uuid, backward: bool) -> Position {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&created_at.to_be_bytes());
        key[16..].copy_from_slice(id.as_bytes());
        Position { key, backward }
    }

    /// The (created_at, id) of a [`Position::creation`].
    pub fn created(&self) -> (i64, Uuid) {
        let mut created = [0u8; 8];
        created.copy_from_slice(&self.key[..8]);
        (i64::from_be_bytes(created), self.uuid(16))
    }

    /// A position given by two ids (a membership's group and member).
    pub fn pair(first: Uuid, second: Uuid, backward: bool) -> Position {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(first.as_bytes());
        key[16..].copy_from_slice(second.as_bytes());
        Position { key, backward }
    }

    /// The two ids of a [`Position::pair`].
    pub fn ids(&self) -> (Uuid, Uuid) {
        (self.uuid(0), self.uuid(16))
    }

    fn uuid(&self, at: usize) -> Uuid {
        let mut id = [0u8; 16];
        id.copy_from_slice(&self.key[at..at + 16]);
        Uuid::from_bytes(id)
    }
}

/// The format's version byte: a future layout is refused as invalid, never misread.
const VERSION: u8 = 1;
/// version, direction, expiry (s), key, query digest.
const PAYLOAD_BYTES: usize = 1 + 1 + 8 + 32 + 8;
/// The HMAC-SHA256 tag, truncated to 128 bits (RFC 2104 §5 allows it; forging still takes
/// 2^128 tries, each one a request).
const TAG_BYTES: usize = 16;

/// The digest binding a cursor to its query: the same parts give the same digest.
pub fn query_digest(parts: &[&str]) -> [u8; 8] {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let mut digest = [0u8; 8];
    digest.copy_from_slice(&hash.finalize()[..8]);
    digest
}

/// The cursor text for `position`, valid until `expires_s` (Unix seconds) for the query
/// `digest`.
pub fn seal(key: &hmac::Key, position: Position, expires_s: i64, digest: [u8; 8]) -> String {
    let mut bytes = Vec::with_capacity(PAYLOAD_BYTES + TAG_BYTES);
    bytes.push(VERSION);
    bytes.push(u8::from(position.backward));
    bytes.extend_from_slice(&expires_s.to_be_bytes());
    bytes.extend_from_slice(&position.key);
    bytes.extend_from_slice(&digest);
    let tag = hmac::sign(key, &bytes);
    bytes.extend_from_slice(&tag.as_ref()[..TAG_BYTES]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position of a cursor made by [`seal`] for the query `digest`, at `now_s`.
pub fn open(
    key: &hmac::Key,
    text: &str,
    now_s: i64,
    digest: [u8; 8],
) -> Result<Position, ScimError> {
    let invalid = || {
        ScimError::bad_request(
            ScimType::InvalidCursor,
            "cursor is not one this server gave for this query: request the first page with \
             an empty cursor, then follow nextCursor or previousCursor (RFC 9865)",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    if bytes.len() != PAYLOAD_BYTES + TAG_BYTES || bytes[0] != VERSION {
        return Err(invalid());
    }
    let (payload, tag) = bytes.split_at(PAYLOAD_BYTES);
    // Compared in constant time: how much of a guess matched must not show in the timing.
    let expected = hmac::sign(key, payload);
    if !bool::from(expected.as_ref()[..TAG_BYTES].ct_eq(tag)) {
        return Err(invalid());
    }
    let read = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&payload[at..at + 8]);
        i64::from_be_bytes(word)
    };
    if payload[1] > 1 || payload[42..50] != digest {
        return Err(invalid());
    }
    let expires_s = read(2);
    if now_s > expires_s {
        return Err(ScimError::bad_request(
            ScimType::ExpiredCursor,
            "cursor has expired: a cursor is valid for cursorTimeout seconds \
             (ServiceProviderConfig.pagination); start again with an empty cursor (RFC 9865)",
        ));
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&payload[10..42]);
    Ok(Position {
        key,
        backward: payload[1] == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[seed; 32])
    }

    const ID: Uuid = Uuid::from_u128(0x0193_a2b4_5c6d_7e8f_9a0b_1c2d_3e4f_5a6b);

    fn position() -> Position {
        Position::creation(1_733_267_594_109, ID, false)
    }

    fn scim_type(result: Result<Position, ScimError>) -> Option<ScimType> {
        result.err().and_then(|e| e.scim_type)
    }

    #[test]
    fn a_sealed_cursor_opens_to_its_position_in_either_direction() {
        let digest = query_digest(&["org", "User", ""]);
        for backward in [false, true] {
            let position = Position::creation(1_733_267_594_109, ID, backward);
            let text = seal(&key(1), position, 1_000, digest);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
                "only unreserved characters: {text}"
            );
            assert_eq!(open(&key(1), &text, 1_000, digest), Ok(position));
            assert_eq!(position.created(), (1_733_267_594_109, ID));
        }
        let pair = Position::pair(ID, Uuid::nil(), false);
        assert_eq!(pair.ids(), (ID, Uuid::nil()));
    }

    #[test]
    fn every_other_cursor_is_refused_with_its_rfc_9865_type() {
        let digest = query_digest(&["org", "User", ""]);
        let text = seal(&key(1), position(), 1_000, digest);
        let mut flipped = URL_SAFE_NO_PAD.decode(&text).unwrap();
        flipped[12] ^= 1; // the position's time, under the tag
        let tampered = URL_SAFE_NO_PAD.encode(&flipped);
        let cases = [
            (
                "past its time",
                text.clone(),
                key(1),
                1_001,
                digest,
                ScimType::ExpiredCursor,
            ),
            (
                "altered",
                tampered,
                key(1),
                1_000,
                digest,
                ScimType::InvalidCursor,
            ),
            (
                "another server's key",
                text.clone(),
                key(2),
                1_000,
                digest,
                ScimType::InvalidCursor,
            ),
            (
                "another query",
                text.clone(),
                key(1),
                1_000,
                query_digest(&["org", "User", "userName pr"]),
                ScimType::InvalidCursor,
            ),
            (
                "garbage",
                String::from("not a cursor!"),
                key(1),
                1_000,
                digest,
                ScimType::InvalidCursor,
            ),
            (
                "cut short",
                text[..20].to_string(),
                key(1),
                1_000,
                digest,
                ScimType::InvalidCursor,
            ),
        ];
        for (name, text, key, now, digest, want) in cases {
            assert_eq!(
                scim_type(open(&key, &text, now, digest)),
                Some(want),
                "{name}"
            );
        }
    }

    #[test]
    fn query_digests_separate_their_parts() {
        assert_ne!(query_digest(&["ab", "c"]), query_digest(&["a", "bc"]));
        assert_eq!(query_digest(&["a", "b"]), query_digest(&["a", "b"]));
    }
}
