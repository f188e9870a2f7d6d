-- Sessions of the operator console (/admin): one per sign-in with an admin key, kept in the
-- database so any of several scimd processes serves them. Only the hash of the cookie's
-- token is stored; the CSRF token every form of the session carries is stored as is.
create table console_sessions (
    id text primary key,
    admin_key_id uuid not null,
    csrf text not null,
    created_at bigint not null,
    expires_at bigint not null
);
create index console_sessions_expires on console_sessions (expires_at);
