-- The fallback email (the user's userName, rendered as its one email when none is stored and
-- userName is an address) is now also in the folded copy that filters read and in
-- user_emails, so `emails.value eq` and `emails[…]` find the address the user is shown with.
-- Users without stored emails get both rewritten at start (store/sql/tenants.rs `refold`,
-- in batches, for rows whose doc_folded is null).
update users set doc_folded = null
where coalesce(json_type(doc, '$.emails'), 'null') <> 'array'
   or json_array_length(doc, '$.emails') = 0;
