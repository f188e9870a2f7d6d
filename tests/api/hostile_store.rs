//! Hostile tenants, storage: statement timeouts free abandoned connections, one case-folding
//! rule on both databases, database files private to their owner.
