-- Lower-cased email values of each user, so `emails.value eq "…"` (how IdPs match users by
-- email) is an index lookup instead of a scan of every document. Maintained by the store in
-- the same transaction as the user row.
create table user_emails (
    user_id uuid not null references users (id) on delete cascade,
    org_id uuid not null,
    value_folded text not null
);
create index user_emails_lookup on user_emails (org_id, value_folded);
create index user_emails_user on user_emails (user_id);

insert into user_emails (user_id, org_id, value_folded)
select u.id, u.org_id, lower(e ->> 'value')
from users u,
     jsonb_array_elements(case when jsonb_typeof(u.doc -> 'emails') = 'array'
                               then u.doc -> 'emails' else '[]'::jsonb end) as e
where e ->> 'value' is not null;
