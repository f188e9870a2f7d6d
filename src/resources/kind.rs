//! What every resource type has, and the operations written once for all of them: read by
//! id, delete, load the related resources a response lists, the PUT document, `If-Match`.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Caller, ResourceResult, Resources};
use crate::config::{PutMode, Settings};
use crate::scim::ScimError;
use crate::scim::doc::merge;
use crate::scim::etag::{EtagCondition, check_if_match};
use crate::scim::interop::Profile;
use crate::scim::schema::ResourceTypeDef;
use crate::store::{Doc, MemberRef, Operation, ResourceRows, Store, StoreResult, Versioned};

/// A resource type: its store calls (one line each), its rendering, and the three changes
/// whose rules differ between types (create, replace, patch).
#[async_trait]
pub trait ResourceKind: Send + Sync + 'static {
    type Record: Versioned + Clone + Send + Sync + 'static;
    /// Name, endpoint and schema (filters and sorting are checked against it).
    const DEF: &'static ResourceTypeDef;
    /// The attribute listing related resources: a user's `groups`, a group's `members`.
    /// They are read only when a response returns them.
    const RELATED: &'static str;
    /// PATCH answers 204 unless the request asks for attributes (Entra's advice for groups:
    /// never echo a huge member list).
    const PATCH_ANSWERS_NO_CONTENT: bool;

    /// The rows of this type in the store.
    fn rows(store: &dyn Store) -> &dyn ResourceRows<Self::Record>;
    /// The related resources of each record, in the records' order; `None` for a record
    /// with too many to list in one response (a group's members past
    /// `settings.group_inline_members`, counted over all records: a response is bounded).
    /// A type whose records were read with them (a user's groups) moves them out of the
    /// records, which are only rendered afterwards.
    async fn related(
        store: &dyn Store,
        settings: &Settings,
        org_id: Uuid,
        records: &mut [Self::Record],
    ) -> StoreResult<Vec<Option<Vec<MemberRef>>>>;

    /// The resource as the client sees it, before projection.
    fn render(view: &View<'_>, record: Self::Record, related: &Related) -> ResourceResult<Doc>;

    /// The resource as `render` renders it, appended to `out` as JSON text without building
    /// a tree, where the type can do that (a user, from its stored text): whether it did
    /// (where it cannot, nothing is written).
    fn render_text(
        _view: &View<'_>,
        _record: &Self::Record,
        _related: &Related,
        _out: &mut Vec<u8>,
    ) -> ResourceResult<bool> {
        Ok(false)
    }

    /// About how many bytes the resource's rendering takes, to size a page's buffer once.
    fn rendered_size_hint(_view: &View<'_>, _record: &Self::Record, _related: &Related) -> usize {
        512
    }

    /// RFC 7644 §3.3.
    async fn create(res: &Resources, caller: &Caller, body: Doc) -> ResourceResult<Self::Record>;
    /// RFC 7644 §3.5.1, in the configured PUT mode.
    async fn replace(
        res: &Resources,
        caller: &Caller,
        id: Uuid,
        body: Doc,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<Self::Record>;
    /// RFC 7644 §3.5.2: all operations or none.
    async fn patch(
        res: &Resources,
        caller: &Caller,
        id: Uuid,
        body: Doc,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<Self::Record>;
}

/// How resources are shown to one request: where the API is, and the profile.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub base_url: &'a str,
    pub profile: Profile,
}

/// What was read of a record's related resources (a user's groups, a group's members).
#[derive(Debug, Clone, PartialEq)]
pub enum Related {
    /// Not asked for: the projection leaves them out.
    NotRead,
    Listed(Vec<MemberRef>),
    /// Too many to list in this response: a group's members are listed at `/GroupMembers`.
    TooMany,
}

impl Related {
    /// The related resources read, if they were.
    pub fn listed(&self) -> Option<&[MemberRef]> {
        match self {
            Related::Listed(items) => Some(items),
            Related::NotRead | Related::TooMany => None,
        }
    }
}

/// A record with its related resources, when they were asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<R> {
    pub record: R,
    pub related: Related,
}

/// A path id that is not a UUID cannot name a resource: 404, exactly as for an unknown id.
fn parse_id<K: ResourceKind>(id: &str) -> Result<Uuid, ScimError> {
    Uuid::parse_str(id).map_err(|_| ScimError::not_found(format!("{} {id} not found", K::DEF.name)))
}

/// The document a PUT makes of the current one: the reference's merge (attributes not given
/// are kept), or RFC 7644 §3.5.1's replace (attributes not given are cleared).
pub(super) fn put_document(mode: PutMode, current: &Doc, given: Doc) -> Doc {
    match mode {
        PutMode::Merge => merge(current, given),
        PutMode::Replace => merge(&Doc::new(), given),
    }
}

/// PATCH adapts some identity providers' requests (`scim/patch/`); each is worth a log line.
pub(super) fn log_adaptations(adaptations: &[&'static str]) {
    for adaptation in adaptations {
        tracing::debug!(adaptation, "PATCH adapted an identity provider's request");
    }
}

impl Resources {
    pub async fn create<K: ResourceKind>(
        &self,
        caller: &Caller,
        body: Doc,
    ) -> ResourceResult<K::Record> {
        K::create(self, caller, body).await
    }

    /// RFC 7644 §3.4.1.
    pub async fn get<K: ResourceKind>(
        &self,
        caller: &Caller,
        id: &str,
    ) -> ResourceResult<K::Record> {
        let id = parse_id::<K>(id)?;
        Ok(K::rows(&*self.store).get(caller.org_id, id).await?)
    }

    pub async fn replace<K: ResourceKind>(
        &self,
        caller: &Caller,
        id: &str,
        body: Doc,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<K::Record> {
        K::replace(self, caller, parse_id::<K>(id)?, body, if_match).await
    }

    pub async fn patch<K: ResourceKind>(
        &self,
        caller: &Caller,
        id: &str,
        body: Doc,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<K::Record> {
        K::patch(self, caller, parse_id::<K>(id)?, body, if_match).await
    }

    /// RFC 7644 §3.6: afterwards the id is 404 everywhere; a user leaves its groups and a
    /// group's memberships go with it, in the same transaction.
    pub async fn delete<K: ResourceKind>(
        &self,
        caller: &Caller,
        id: &str,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<()> {
        let id = parse_id::<K>(id)?;
        let check = |current: &K::Record| check_if_match(if_match, current.version());
        let change = caller.change(Operation::Delete, None);
        K::rows(&*self.store)
            .delete(caller.org_id, id, &check, &change)
            .await?;
        Ok(())
    }

    /// One record with its related resources when `with_related`.
    pub async fn load_one<K: ResourceKind>(
        &self,
        caller: &Caller,
        record: K::Record,
        with_related: bool,
    ) -> ResourceResult<Loaded<K::Record>> {
        let loaded = self.load::<K>(caller, vec![record], with_related).await?;
        loaded.into_iter().next().ok_or_else(|| {
            anyhow::anyhow!("the store returned no related list for a record").into()
        })
    }

    /// The records with their related resources when `with_related` (one query for all of
    /// them where the store can), else as they are.
    pub async fn load<K: ResourceKind>(
        &self,
        caller: &Caller,
        mut records: Vec<K::Record>,
        with_related: bool,
    ) -> ResourceResult<Vec<Loaded<K::Record>>> {
        if !with_related {
            return Ok(records
                .into_iter()
                .map(|record| Loaded {
                    record,
                    related: Related::NotRead,
                })
                .collect());
        }
        let related = K::related(&*self.store, &self.settings, caller.org_id, &mut records).await?;
        Ok(records
            .into_iter()
            .zip(related)
            .map(|(record, related)| Loaded {
                record,
                related: related.map_or(Related::TooMany, Related::Listed),
            })
            .collect())
    }
}
