//! `POST /.search` at the service root (RFC 7644 §3.4.3): one query over Users and Groups.
//! Results are users then groups, each in its own default order, paged across both.

use super::{Caller, Groups, ListRequest, Loaded, ResourceKind, ResourceResult, Resources, Users};
use crate::scim::ScimError;
use crate::scim::filter::check::validate;
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use crate::store::{GroupRecord, ListQuery, UserRecord};

/// A page of a root search: the users of the page, then its groups.
#[derive(Debug, Clone, PartialEq)]
pub struct RootPage {
    pub users: Vec<Loaded<UserRecord>>,
    pub groups: Vec<Loaded<GroupRecord>>,
    pub total: i64,
    pub start_index: i64,
}

impl Resources {
    /// Index paging in the default order only; `with_related(attribute)` says whether the
    /// related resources named by a type's [`ResourceKind::RELATED`] are returned.
    pub async fn search_all(
        &self,
        caller: &Caller,
        request: ListRequest,
        with_related: impl Fn(&str) -> bool,
    ) -> ResourceResult<RootPage> {
        let request = request.limited(&self.settings.limits, &[&USER_RESOURCE, &GROUP_RESOURCE])?;
        if request.cursor_mode || request.query.sort.is_some() {
            return Err(ScimError::invalid_value(
                "root search supports index paging in the default order only (no cursor, no sortBy)",
            )
            .into());
        }
        let org = caller.org_id;
        let start = request.query.start_index;
        let count = request.query.count;

        // Totals first (count = 0 reads no rows), so the page can be split between the types.
        // A filter that does not fit one resource type selects nothing of that type; it is an
        // error only when it fits neither (RFC 7644 §3.4.3 leaves this to the server).
        let totals = ListQuery {
            count: 0,
            ..request.query.clone()
        };
        let fits = |resource| {
            request
                .query
                .filter
                .as_ref()
                .is_none_or(|f| validate(f, resource).is_ok())
        };
        let user_total = if fits(&USER_RESOURCE) {
            Some(self.store.users().list(org, &totals).await?.total)
        } else {
            None
        };
        let group_total = if fits(&GROUP_RESOURCE) {
            Some(self.store.groups().list(org, &totals).await?.total)
        } else {
            None
        };
        if user_total.is_none() && group_total.is_none() {
            let detail = "the filter names attributes that neither Users nor Groups have";
            return Err(ScimError::invalid_filter(detail).into());
        }
        let (user_total, group_total) = (user_total.unwrap_or(0), group_total.unwrap_or(0));

        // One byte budget for the whole page: what the users used is not left for the groups.
        // A page stopped early has fewer items than asked; the next startIndex continues it.
        let mut budget = self.settings.limits.list_byte_budget;
        let mut users = Vec::new();
        if start <= user_total && count > 0 {
            let query = ListQuery {
                start_index: start,
                count,
                ..request.query.clone()
            };
            let page = self.store.users().list(org, &query).await?;
            if page.truncated {
                budget = 0;
            }
            // Measured as the store measures the budget.
            let used: usize = page.rows.iter().map(|u| u.doc.budget_bytes()).sum();
            budget = budget.saturating_sub(used);
            users = self
                .load::<Users>(caller, page.rows, with_related(Users::RELATED))
                .await?;
        }
        let remaining = count - users.len() as i64;
        let mut groups = Vec::new();
        if remaining > 0 && group_total > 0 && budget > 0 {
            let group_start = (start - user_total).max(1);
            let query = ListQuery {
                start_index: group_start,
                count: remaining,
                byte_budget: Some(budget),
                ..request.query.clone()
            };
            let page = self.store.groups().list(org, &query).await?;
            groups = self
                .load::<Groups>(caller, page.rows, with_related(Groups::RELATED))
                .await?;
        }
        Ok(RootPage {
            users,
            groups,
            total: user_total + group_total,
            start_index: start,
        })
    }
}
