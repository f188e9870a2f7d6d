//! Memberships read one by one (the group-membership draft's `GroupMember` resource): what
//! a membership is and which page of them to read. They are written through the group, so
//! a membership and `Group.members` never disagree and every change is in the change log.

use uuid::Uuid;

/// One membership: a user in a group, since `created_at` (milliseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub created_at: i64,
}

/// Which memberships to read: of one group and/or one member, in (group, member) order,
/// from the 1-based `start_index` or after the keyset position `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipQuery {
    pub group: Option<Uuid>,
    pub member: Option<Uuid>,
    pub start_index: i64,
    pub count: i64,
    /// (group, member) of the last membership of the previous page.
    pub after: Option<(Uuid, Uuid)>,
}
