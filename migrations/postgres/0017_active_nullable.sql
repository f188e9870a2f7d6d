-- `active` is null where the SCIM interoperability profile (SCIMD_PROFILE=interop) renders no
-- `active` because none is stored (RFC 7643 strict rendering); the reference profile keeps
-- writing true there, as before. The column mirrors what is rendered so that filters agree
-- with it; a change of profile refolds the users it concerns at start
-- (store/sql/tenants.rs `adopt_profile`).
alter table users alter column active drop not null;

-- A user's groups are read by (org_id, user_id); with group_id in the index the lookup is
-- covered (an index-only scan here; on SQLite the planner needs it to pick this index at all).
drop index group_members_user;
create index group_members_user on group_members (org_id, user_id, group_id);

-- A group's members in the order they were added, the first N read from the index alone, so
-- reading the first members of a very large group does not sort all of them.
create index group_members_order on group_members (org_id, group_id, created_at, user_id);
