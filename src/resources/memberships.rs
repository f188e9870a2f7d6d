//! Memberships one by one (the group-membership draft's `/GroupMembers`): created, read,
//! listed and deleted. A membership is written as the group's member change (the same
//! statement or transaction a PATCH `add`/`remove` of one member takes), so `Group.members`,
//! the memberships and the change log never disagree: the log records a `patch` of the
//! group naming the member, exactly as for that PATCH.

use serde_json::{Value, json};
use uuid::Uuid;

use super::{Caller, ListRequest, ResourceError, ResourceResult, Resources};
use crate::scim::cursor::Position;
use crate::scim::group_member::{self, Selection};
use crate::scim::schema::GROUP_MEMBER_RESOURCE;
use crate::scim::{PATCH_OP_SCHEMA, ScimError};
use crate::store::{
    GroupRecord, GroupWrite, MemberOp, Membership, MembershipQuery, Operation, StoreError,
};

/// A page of memberships, ready to render as a ListResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipPage {
    pub items: Vec<Membership>,
    pub total: i64,
    /// `startIndex`; absent in cursor mode (RFC 9865).
    pub start_index: Option<i64>,
    pub next_cursor: Option<String>,
}

impl Resources {
    /// POST /GroupMembers: 409 `uniqueness` when the user already is a member; a group or
    /// member that does not exist is 400 `invalidValue` (the draft's answer).
    pub async fn add_membership(
        &self,
        caller: &Caller,
        body: serde_json::Map<String, Value>,
    ) -> ResourceResult<Membership> {
        let (group_id, user_id) = group_member::parse_new(body)?;
        let group = self.membership_group(caller, group_id).await?;
        match self
            .store
            .membership(caller.org_id, group_id, user_id)
            .await
        {
            Ok(_) => {
                return Err(ScimError::uniqueness(format!(
                    "user {user_id} already is a member of group {group_id}"
                ))
                .into());
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        let changed = match self
            .change_membership(caller, group, MemberOp::Add(vec![user_id]))
            .await
        {
            Err(ResourceError::Store(StoreError::NotFound)) => {
                return Err(ScimError::invalid_value(format!(
                    "group.value {group_id} does not exist"
                ))
                .into());
            }
            other => other?,
        };
        if !changed {
            // Another request added it first.
            return Err(ScimError::uniqueness(format!(
                "user {user_id} already is a member of group {group_id}"
            ))
            .into());
        }
        Ok(self
            .store
            .membership(caller.org_id, group_id, user_id)
            .await?)
    }

    /// GET /GroupMembers/{id}; an id that names no membership of the organization is 404.
    pub async fn membership(&self, caller: &Caller, id: &str) -> ResourceResult<Membership> {
        let (group_id, user_id) = group_member::parse_id(id).ok_or_else(|| not_found(id))?;
        match self
            .store
            .membership(caller.org_id, group_id, user_id)
            .await
        {
            Err(StoreError::NotFound) => Err(not_found(id).into()),
            other => Ok(other?),
        }
    }

    /// DELETE /GroupMembers/{id}: the member leaves the group.
    pub async fn remove_membership(&self, caller: &Caller, id: &str) -> ResourceResult<()> {
        let membership = self.membership(caller, id).await?;
        let group = match self
            .store
            .groups()
            .get(caller.org_id, membership.group_id)
            .await
        {
            Err(StoreError::NotFound) => return Err(not_found(id).into()),
            other => other?,
        };
        match self
            .change_membership(caller, group, MemberOp::Remove(vec![membership.user_id]))
            .await
        {
            Ok(true) => Ok(()),
            // Removed (or the group deleted) by another request first.
            Ok(false) | Err(ResourceError::Store(StoreError::NotFound)) => {
                Err(not_found(id).into())
            }
            Err(e) => Err(e),
        }
    }

    /// GET /GroupMembers: filtered by `group.value` and/or `member.value`, in (group, member)
    /// order, by index or by cursor (RFC 9865: `nextCursor`, sealed and bound like a
    /// resource list's).
    pub async fn list_memberships(
        &self,
        caller: &Caller,
        request: ListRequest,
    ) -> ResourceResult<MembershipPage> {
        // The filter's cost and shape are checked as for any list (it may name only the
        // schema's attributes).
        let mut request = request.limited(&self.settings.limits, &[&GROUP_MEMBER_RESOURCE])?;
        if request.query.sort.is_some() {
            return Err(ScimError::invalid_value(
                "GroupMembers are listed in one order (group, then member); sortBy is not supported",
            )
            .into());
        }
        let selected = match &request.query.filter {
            Some(filter) => group_member::selection(filter)?,
            None => Selection::default(),
        };
        let sealer = self
            .sealer(&request, caller, &GROUP_MEMBER_RESOURCE)
            .await?;
        let after = match sealer
            .as_ref()
            .map(|s| s.open(&request))
            .transpose()?
            .flatten()
        {
            Some(position) => {
                if position.backward {
                    return Err(ScimError::bad_request(
                        crate::scim::ScimType::InvalidCursor,
                        "GroupMembers pages go forward only",
                    )
                    .into());
                }
                Some(position.ids())
            }
            _ => None,
        };
        let page_size = request.cursor_page_size();
        let query = MembershipQuery {
            group: selected.group,
            member: selected.member,
            start_index: request.query.start_index,
            count: request.query.count,
            after,
        };
        let (mut items, total) = self.store.memberships(caller.org_id, &query).await?;
        let more = items.len() as i64 > page_size;
        items.truncate(page_size.max(0) as usize);
        let next_cursor = match (&sealer, items.last()) {
            (Some(sealer), Some(last)) if more => {
                Some(sealer.seal(Position::pair(last.group_id, last.user_id, false)))
            }
            _ => None,
        };
        Ok(MembershipPage {
            items,
            total,
            start_index: (!request.cursor_mode).then_some(request.query.start_index),
            next_cursor,
        })
    }

    /// The group a new membership names: one that does not exist is `invalidValue`.
    async fn membership_group(&self, caller: &Caller, id: Uuid) -> ResourceResult<GroupRecord> {
        match self.store.groups().get(caller.org_id, id).await {
            Err(StoreError::NotFound) => {
                Err(ScimError::invalid_value(format!("group.value {id} does not exist")).into())
            }
            other => Ok(other?),
        }
    }

    /// One member added to or removed from `group`, as a PATCH of that one change does it
    /// (and logged as such); whether it changed the group (a new version).
    async fn change_membership(
        &self,
        caller: &Caller,
        group: GroupRecord,
        op: MemberOp,
    ) -> ResourceResult<bool> {
        let (verb, ids) = match &op {
            MemberOp::Add(ids) => ("add", ids),
            MemberOp::Remove(ids) => ("remove", ids),
            _ => return Err(anyhow::anyhow!("a membership changes one member").into()),
        };
        let values: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        let data = json!({
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": verb, "path": "members", "value": values}],
        });
        let change = caller.change(Operation::Patch, Some(data));
        // Unchanged, the store answers the group as it was: the same version.
        let read = group.version;
        if let Some(written) = self
            .store
            .change_members(caller.org_id, &group, &op, &change)
            .await?
        {
            return Ok(written.version != read);
        }
        let keep = |current: &GroupRecord| GroupWrite::from_doc(current.doc.clone());
        let written = self
            .store
            .update_group(caller.org_id, group.id, &keep, &[op], &change)
            .await?;
        Ok(written.version != read)
    }
}

fn not_found(id: &str) -> ScimError {
    ScimError::not_found(format!("GroupMember {id} not found"))
}
