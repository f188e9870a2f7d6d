//! Hostile tenants, request content: caps on documents, values, PATCH operations, members,
//! filters, list pages and password hashing, each refused with a SCIM error naming the cap.
