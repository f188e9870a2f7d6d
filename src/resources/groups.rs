//! Groups (RFC 7643 §4.2): what differs from other resource types. Members live in their own
//! table: a change names them by id, they are checked to be users of the organization in the
//! same transaction, and they are read only when a response returns them.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::kind::{log_adaptations, put_document};
use super::{Caller, Related, ResourceKind, ResourceResult, Resources, View};
use crate::config::PutMode;
use crate::config::Settings;
use crate::scim::doc::merge;
use crate::scim::etag::{EtagCondition, check_if_match};
use crate::scim::group::{self, GroupMeta};
use crate::scim::interop;
use crate::scim::limits::{check_document, check_members};
use crate::scim::normalize::normalize_resource;
use crate::scim::patch;
use crate::scim::schema::{GROUP_MEMBERS_EXTENSION_SCHEMA, GROUP_RESOURCE, ResourceTypeDef};
use crate::store::{
    Doc, GroupRecord, GroupWrite, MemberOp, MemberRef, Operation, ResourceRows, Store, StoreResult,
};

/// The Group resource type.
pub struct Groups;

#[async_trait]
impl ResourceKind for Groups {
    type Record = GroupRecord;
    const DEF: &'static ResourceTypeDef = &GROUP_RESOURCE;
    const RELATED: &'static str = "members";
    const PATCH_ANSWERS_NO_CONTENT: bool = true;

    fn rows(store: &dyn Store) -> &dyn ResourceRows<GroupRecord> {
        store.groups()
    }

    /// Each group's members, in the order they were added (Entra lists groups with
    /// `excludedAttributes=members`, so this is skipped then).
    async fn related(
        store: &dyn Store,
        settings: &Settings,
        org_id: Uuid,
        groups: &mut [GroupRecord],
    ) -> StoreResult<Vec<Option<Vec<MemberRef>>>> {
        // One budget for the whole response: a page of groups lists as many members in all
        // as one group may. One more than fits tells a group that does not.
        let mut budget = settings.group_inline_members;
        let mut members = Vec::with_capacity(groups.len());
        for group in groups.iter() {
            let limit = i64::try_from(budget).unwrap_or(i64::MAX).saturating_add(1);
            let listed = store.group_members(org_id, group.id, limit).await?;
            if listed.len() > budget {
                members.push(None);
            } else {
                budget -= listed.len();
                members.push(Some(listed));
            }
        }
        Ok(members)
    }

    /// The same in both profiles: a group stores everything it renders. A group with more
    /// members than this response lists shows none, and `membersMetadata` (policy
    /// `external`) says where they are listed instead (the group-membership draft).
    fn render(view: &View<'_>, record: GroupRecord, members: &Related) -> ResourceResult<Doc> {
        let (base_url, id) = (view.base_url, record.id.to_string());
        let external = *members == Related::TooMany;
        let members = members.listed();
        let meta = GroupMeta {
            id: &id,
            created_ms: record.created_at,
            modified_ms: record.modified_at,
            version: record.version,
            location: format!("{base_url}/Groups/{id}"),
            base_url,
            members_listed_elsewhere: external,
        };
        Ok(group::render(record.doc, members, &meta))
    }

    /// 409 `uniqueness` for a displayName taken in the organization (any case).
    async fn create(res: &Resources, caller: &Caller, body: Doc) -> ResourceResult<GroupRecord> {
        let limits = &res.settings.limits;
        let mut doc = normalize_resource(&GROUP_RESOURCE, body)?;
        // Computed by the server when the group is read, never stored.
        doc.remove(GROUP_MEMBERS_EXTENSION_SCHEMA);
        let data = Value::Object(doc.clone());
        let members = group::take_member_ids(&mut doc)?.unwrap_or_default();
        check_members(members.len(), limits)?;
        let doc = merge(&Doc::new(), doc);
        check_document("group", &doc, limits)?;
        let write = GroupWrite::from_doc(doc)?;
        let change = caller.change(Operation::Create, Some(data));
        Ok(res
            .store
            .create_group(caller.org_id, &write, &members, &change)
            .await?)
    }

    /// Like users: sets the attributes provided (all of them in replace mode); `members`
    /// given → the membership becomes exactly that list.
    async fn replace(
        res: &Resources,
        caller: &Caller,
        id: Uuid,
        body: Doc,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<GroupRecord> {
        let limits = res.settings.limits;
        let mut doc = normalize_resource(&GROUP_RESOURCE, body)?;
        // A group echoed back as it was read: when it was shown without its members (too many
        // to list), their absence from the body does not mean "no members" in replace mode.
        let members_listed_elsewhere = doc.remove(GROUP_MEMBERS_EXTENSION_SCHEMA).is_some();
        let data = Value::Object(doc.clone());
        let members = group::take_member_ids(&mut doc)?;
        check_members(members.as_ref().map_or(0, Vec::len), &limits)?;
        check_document("group", &doc, &limits)?;
        let put_mode = res.settings.put_mode;
        let update = |current: &GroupRecord| {
            check_if_match(if_match, current.version)?;
            let next = put_document(put_mode, &current.doc, doc.clone());
            check_document("group", &next, &limits)?;
            GroupWrite::from_doc(next)
        };
        let member_ops = match (members, put_mode) {
            (Some(ids), _) => vec![MemberOp::Replace(ids)],
            (None, PutMode::Replace) if !members_listed_elsewhere => vec![MemberOp::RemoveAll],
            (None, PutMode::Replace) => Vec::new(),
            (None, PutMode::Merge) => Vec::new(),
        };
        let change = caller.change(Operation::Put, Some(data));
        Ok(res
            .store
            .update_group(caller.org_id, id, &update, &member_ops, &change)
            .await?)
    }

    /// As Okta and Entra ID send it: membership changes touch one row per member; the
    /// group's own attributes go through the PATCH engine; all of it in one transaction.
    async fn patch(
        res: &Resources,
        caller: &Caller,
        id: Uuid,
        body: Doc,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<GroupRecord> {
        let limits = res.settings.limits;
        patch::check_operation_count(&body, &limits)?;
        // A primary-key read first: a large body aimed at a missing group (or a stale version)
        // is refused before its operations and member ids are parsed.
        let current = res.store.groups().get(caller.org_id, id).await?;
        check_if_match(if_match, current.version)?;
        let ops = patch::parse_request(&body)?;
        if res.settings.profile.is_interop() {
            interop::check_patch_ops(&ops)?;
        }
        let change = caller.change(Operation::Patch, Some(Value::Object(body)));
        let (attribute_ops, member_ops) = group::split_member_ops(ops, id)?;
        check_members(group::member_count(&member_ops), &limits)?;
        // How IdPs maintain groups: one add or one remove of members, nothing else. Written
        // by one statement where the store has one, so writers of one large group queue for
        // its row only for that statement.
        if attribute_ops.is_empty()
            && if_match.is_none()
            && let [op] = member_ops.as_slice()
            && let Some(record) = res
                .store
                .change_members(caller.org_id, &current, op, &change)
                .await?
        {
            return Ok(record);
        }
        let update = |current: &GroupRecord| {
            check_if_match(if_match, current.version)?;
            let outcome = patch::apply(&GROUP_RESOURCE, &current.doc, &attribute_ops, &limits)?;
            log_adaptations(&outcome.adaptations);
            check_document("group", &outcome.doc, &limits)?;
            GroupWrite::from_doc(outcome.doc)
        };
        Ok(res
            .store
            .update_group(caller.org_id, id, &update, &member_ops, &change)
            .await?)
    }
}
