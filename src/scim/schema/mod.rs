//! Static SCIM schema definitions, case-insensitive lookup and their JSON representation.
//!
//! The attribute characteristics follow RFC 7643 §2.2 (defaults) and §7 (schema
//! representation); the concrete schemas are RFC 7643 §4.1/§8.7.1 (User), §4.2 (Group),
//! §4.3/§8.7.2 (enterprise User extension) plus Omni's two user extensions. Common
//! attributes (`id`, `externalId`, `meta`, RFC 7643 §3.1) are not part of any schema and live
//! in [`COMMON`]; [`ResourceTypeDef::resolve`] consults them after the core schema.
//!
//! Validation of client bodies against these definitions is in `super::normalize`.
//!
//! Layout: this file holds the types, the resource types and the lookups; the attribute
//! tables are data, in `core_schemas` (User, Group, common attributes) and
//! `extension_schemas` (enterprise User, Omni), written with the builders of `build`.

use serde_json::{Map, Value, json};

mod build;
mod core_schemas;
mod extension_schemas;
mod membership_schemas;

#[cfg(test)]
mod tests;

pub use core_schemas::{COMMON, GROUP, USER};
pub use extension_schemas::{ENTERPRISE_USER, OMNI_USER, USER_ATTRIBUTE};
pub use membership_schemas::{
    GROUP_MEMBER, GROUP_MEMBER_SCHEMA, GROUP_MEMBERS_EXTENSION, GROUP_MEMBERS_EXTENSION_SCHEMA,
};

/// RFC 7643 §7: schema of the resources served at `/Schemas`.
pub const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// RFC 7643 §6: schema of the resources served at `/ResourceTypes`.
pub const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// RFC 7643 §2.3: the data type of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// RFC 7643 §2.2 / §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §2.2 / §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// RFC 7643 §2.2 / §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl AttrType {
    /// The `type` keyword of RFC 7643 §7.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

impl Mutability {
    /// The `mutability` keyword of RFC 7643 §7.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

impl Returned {
    /// The `returned` keyword of RFC 7643 §7.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

impl Uniqueness {
    /// The `uniqueness` keyword of RFC 7643 §7.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute (or sub-attribute) definition with its RFC 7643 §2.2 characteristics.
#[derive(Debug)]
pub struct AttributeDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttributeDef],
}

/// A schema (RFC 7643 §7): URN id, name and top-level attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttributeDef],
}

/// A resource type (RFC 7643 §6): endpoint, core schema and extensions (`bool` = required).
#[derive(Debug)]
pub struct ResourceTypeDef {
    pub id: &'static str,
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static SchemaDef,
    pub extensions: &'static [(&'static SchemaDef, bool)],
}

/// RFC 7643 §8.6: the User resource type with its (optional) extensions.
pub static USER_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    id: "User",
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER,
    extensions: &[
        (&ENTERPRISE_USER, false),
        (&USER_ATTRIBUTE, false),
        (&OMNI_USER, false),
    ],
};

/// RFC 7643 §8.6: the Group resource type.
pub static GROUP_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    id: "Group",
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP,
    // Read-only: shown on a group too large to list its members inline.
    extensions: &[(&GROUP_MEMBERS_EXTENSION, false)],
};

/// The group-membership draft's `GroupMember` resource type: one membership.
pub static GROUP_MEMBER_RESOURCE: ResourceTypeDef = ResourceTypeDef {
    id: "GroupMember",
    name: "GroupMember",
    endpoint: "/GroupMembers",
    description: "Resource representing a single group membership.",
    schema: &GROUP_MEMBER,
    extensions: &[],
};

/// Every schema served at `/Schemas` (RFC 7644 §4), core schemas first.
pub fn all_schemas() -> [&'static SchemaDef; 7] {
    [
        &USER,
        &GROUP,
        &GROUP_MEMBER,
        &ENTERPRISE_USER,
        &OMNI_USER,
        &USER_ATTRIBUTE,
        &GROUP_MEMBERS_EXTENSION,
    ]
}

/// Every resource type served at `/ResourceTypes` (RFC 7644 §4).
pub fn all_resource_types() -> [&'static ResourceTypeDef; 3] {
    [&USER_RESOURCE, &GROUP_RESOURCE, &GROUP_MEMBER_RESOURCE]
}

/// The schema with URN `id` (case-insensitive, RFC 7643 §2.1), for `/Schemas/{id}`.
pub fn schema_by_id(id: &str) -> Option<&'static SchemaDef> {
    all_schemas()
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
}

/// A common attribute (`id`, `externalId`, `meta`; RFC 7643 §3.1) by case-insensitive name.
pub fn common_attribute(name: &str) -> Option<&'static AttributeDef> {
    find(COMMON, name)
}

/// RFC 7643 §2.1: attribute names are case-insensitive.
fn find(list: &'static [AttributeDef], name: &str) -> Option<&'static AttributeDef> {
    list.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Joins `base_url` and an absolute path without doubling the slash.
fn location(base_url: &str, path: &str) -> String {
    format!("{}{}", base_url.trim_end_matches('/'), path)
}

impl AttributeDef {
    /// The sub-attribute `name` (case-insensitive) of a complex attribute.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        find(self.sub_attributes, name)
    }

    /// RFC 7643 §7 attribute representation.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name));
        out.insert("type".into(), json!(self.ty.as_str()));
        out.insert("multiValued".into(), json!(self.multi_valued));
        out.insert("description".into(), json!(self.description));
        out.insert("required".into(), json!(self.required));
        // RFC 7643 §7: caseExact is about string comparison; complex attributes have
        // none of their own (RFC 7643 §8.7.1 omits it for them too).
        if self.ty != AttrType::Complex {
            out.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical_values.is_empty() {
            out.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        if self.ty == AttrType::Reference {
            out.insert("referenceTypes".into(), json!(self.reference_types));
        }
        if self.ty == AttrType::Complex {
            let subs = self.sub_attributes.iter().map(AttributeDef::to_json);
            out.insert("subAttributes".into(), Value::Array(subs.collect()));
        }
        out.insert("mutability".into(), json!(self.mutability.as_str()));
        out.insert("returned".into(), json!(self.returned.as_str()));
        out.insert("uniqueness".into(), json!(self.uniqueness.as_str()));
        Value::Object(out)
    }
}

impl SchemaDef {
    /// The top-level attribute `name` (case-insensitive) of this schema.
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        find(self.attributes, name)
    }

    /// RFC 7643 §7 schema representation, as served at `/Schemas/{id}` (RFC 7644 §4).
    pub fn to_json(&self, base_url: &str) -> Value {
        let attributes: Vec<Value> = self.attributes.iter().map(AttributeDef::to_json).collect();
        json!({
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": attributes,
            "meta": {
                "resourceType": "Schema",
                "location": location(base_url, &format!("/Schemas/{}", self.id)),
            },
        })
    }
}

impl ResourceTypeDef {
    /// The core schema or one of the extensions whose URN equals `urn` (case-insensitive).
    pub fn schema_by_urn(&self, urn: &str) -> Option<&'static SchemaDef> {
        std::iter::once(self.schema)
            .chain(self.extensions.iter().map(|(s, _)| *s))
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves (schema URN or `None` for core, attribute name, optional sub-attribute) to
    /// definitions; COMMON attributes (`id`, `externalId`, `meta.*`) resolve too.
    ///
    /// RFC 7644 §3.10: an attribute without a URN prefix belongs to the core schema, so
    /// extension attributes only resolve with their URN. Common attributes resolve with no
    /// URN or with the core URN. A `sub` on a non-complex attribute does not resolve.
    pub fn resolve(
        &self,
        schema: Option<&str>,
        attr: &str,
        sub: Option<&str>,
    ) -> Option<(&'static AttributeDef, Option<&'static AttributeDef>)> {
        let schema = match schema {
            Some(urn) => self.schema_by_urn(urn)?,
            None => self.schema,
        };
        let def = match schema.attribute(attr) {
            Some(def) => def,
            None if std::ptr::eq(schema, self.schema) => common_attribute(attr)?,
            None => return None,
        };
        match sub {
            Some(name) => Some((def, Some(def.sub_attribute(name)?))),
            None => Some((def, None)),
        }
    }

    /// RFC 7643 §6 ResourceType representation, as served at `/ResourceTypes` (RFC 7644 §4).
    pub fn to_json(&self, base_url: &str) -> Value {
        let extensions: Vec<Value> = self
            .extensions
            .iter()
            .map(|(s, required)| json!({ "schema": s.id, "required": required }))
            .collect();
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": extensions,
            "meta": {
                "resourceType": "ResourceType",
                "location": location(base_url, &format!("/ResourceTypes/{}", self.id)),
            },
        })
    }
}
