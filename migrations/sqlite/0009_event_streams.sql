-- SCIM event streams (RFC 9967): each follows its organization's change log from `position`
-- (the last entry acknowledged) and delivers entries as signed SETs, by push (RFC 8935) or
-- poll (RFC 8936).
create table event_streams (
    org_id text not null references organizations (id) on delete cascade,
    id text not null,
    -- push or poll.
    kind text not null,
    -- Push: where SETs are POSTed.
    endpoint text,
    -- The events delivered (a JSON array of create, put, patch, delete, activate,
    -- deactivate).
    events text not null,
    -- Full events carry the request's data; notice events the changed attribute names.
    full_data integer not null,
    -- Push: the Authorization header value sent with every SET (shown once, never listed).
    auth_header text,
    -- Poll: SHA-256 of the stream's own bearer token.
    poll_token_hash text,
    -- The last change-log position acknowledged: delivery resumes after it.
    position integer not null,
    -- Poll: positions after `position` acknowledged out of order (a JSON array).
    acked_ahead text,
    -- active, failing or disabled.
    state text not null,
    failing_since integer,
    last_error text,
    -- When the receiver last acknowledged anything (ms); a stream silent for
    -- SCIMD_STREAM_MAX_LAG_DAYS is disabled.
    last_ack_at integer not null,
    delivered integer not null,
    created_at integer not null,
    -- The process delivering a push stream, and until when its lease holds.
    lease_owner text,
    lease_until integer,
    primary key (org_id, id)
);
-- Poll requests and the command line name a stream by id alone.
create index event_streams_id on event_streams (id);

-- Keys that sign SETs (ES256). The newest unretired one signs; every key not retired for
-- longer than a week is published in the JWKS, so SETs signed before a rotation still verify.
create table event_signing_keys (
    kid text primary key,
    -- PKCS#8 DER of the P-256 private key, base64.
    private_key text not null,
    created_at integer not null,
    retired_at integer
);
