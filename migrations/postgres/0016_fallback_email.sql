-- The fallback email (the user's userName, rendered as its one email when none is stored and
-- userName is an address) is now also in the folded copy that filters read and in
-- user_emails, so `emails.value eq` and `emails[…]` find the address the user is shown with.
-- Users without stored emails get both rewritten at start (store/sql/tenants.rs `refold`,
-- in batches, for rows whose doc_folded is null).
update users set doc_folded = null
where coalesce(jsonb_typeof(doc -> 'emails'), 'null') <> 'array'
   or jsonb_array_length(case when jsonb_typeof(doc -> 'emails') = 'array'
                              then doc -> 'emails' else '[]'::jsonb end) = 0;
