//! Static SCIM schema definitions, case-insensitive lookup and their JSON representation.
//!
//! The attribute characteristics follow RFC 7643 §2.2 (defaults) and §7 (schema
//! representation); the concrete schemas are RFC 7643 §4.1/§8.7.1 (User), §4.2 (Group),
//! §4.3/§8.7.2 (enterprise User extension) plus Omni's two user extensions. Common
//! attributes (`id`, `externalId`, `meta`, RFC 7643 §3.1) are not part of any schema and live
//! in [`COMMON`]; [`ResourceTypeDef::resolve`] consults them after the core schema.
//!
//! Validation of client bodies against these definitions is in `super::normalize`.

use serde_json::{Map, Value, json};

use super::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, OMNI_USER_EXTENSION_SCHEMA, USER_ATTRIBUTE_SCHEMA,
    USER_SCHEMA,
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

// ---------------------------------------------------------------------------------------
// Const builders. RFC 7643 §2.2 defines the defaults used by `attr` (required false,
// caseExact false, mutability readWrite, returned default, uniqueness none), so each
// definition below only spells out where it departs from them, as RFC 7643 §8.7 does.
// ---------------------------------------------------------------------------------------

const fn attr(name: &'static str, ty: AttrType, description: &'static str) -> AttributeDef {
    AttributeDef {
        name,
        ty,
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

const fn string(name: &'static str, description: &'static str) -> AttributeDef {
    attr(name, AttrType::String, description)
}

const fn complex(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [AttributeDef],
) -> AttributeDef {
    let mut def = attr(name, AttrType::Complex, description);
    def.sub_attributes = sub_attributes;
    def
}

const fn reference(
    name: &'static str,
    description: &'static str,
    reference_types: &'static [&'static str],
) -> AttributeDef {
    let mut def = attr(name, AttrType::Reference, description);
    def.reference_types = reference_types;
    def
}

impl AttributeDef {
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn mandatory(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_sensitive(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn mutable(mut self, mutability: Mutability) -> Self {
        self.mutability = mutability;
        self
    }
    const fn read_only(self) -> Self {
        self.mutable(Mutability::ReadOnly)
    }
    const fn returned_as(mut self, returned: Returned) -> Self {
        self.returned = returned;
        self
    }
    const fn unique(mut self, uniqueness: Uniqueness) -> Self {
        self.uniqueness = uniqueness;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }
}

const DISPLAY_DESC: &str = "A human-readable name, primarily used for display purposes.";
const TYPE_DESC: &str = "A label indicating the attribute's function.";
const PRIMARY_DESC: &str = "A Boolean value indicating the 'primary' or preferred attribute \
     value for this attribute. The primary attribute value 'true' MUST appear no more than once.";

/// The `value`/`display`/`type`/`primary` sub-attributes RFC 7643 §2.4 gives every
/// multi-valued attribute of the User schema, with the attribute's own `value` definition and
/// canonical `type` values (RFC 7643 §4.1.2).
const fn multi_value_subs(
    value: AttributeDef,
    types: &'static [&'static str],
) -> [AttributeDef; 4] {
    [
        value,
        string("display", DISPLAY_DESC),
        string("type", TYPE_DESC).canonical(types),
        attr("primary", AttrType::Boolean, PRIMARY_DESC),
    ]
}

// RFC 7643 §4.1.1: components of the user's real name.
const NAME_SUBS: &[AttributeDef] = &[
    string(
        "formatted",
        "The full name, including all middle names, titles and suffixes, formatted for display.",
    ),
    string(
        "familyName",
        "The family name of the User, or last name in most Western languages.",
    ),
    string(
        "givenName",
        "The given name of the User, or first name in most Western languages.",
    ),
    string("middleName", "The middle name(s) of the User."),
    string(
        "honorificPrefix",
        "The honorific prefix(es) of the User, or title in most Western languages.",
    ),
    string(
        "honorificSuffix",
        "The honorific suffix(es) of the User, or suffix in most Western languages.",
    ),
];

const EMAIL_SUBS: &[AttributeDef] = &multi_value_subs(
    string("value", "Email address for the User."),
    &["work", "home", "other"],
);
const PHONE_SUBS: &[AttributeDef] = &multi_value_subs(
    string("value", "Phone number of the User."),
    &["work", "home", "mobile", "fax", "pager", "other"],
);
const IM_SUBS: &[AttributeDef] = &multi_value_subs(
    string("value", "Instant messaging address for the User."),
    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
);
const PHOTO_SUBS: &[AttributeDef] = &multi_value_subs(
    reference("value", "URL of a photo of the User.", &["external"]),
    &["photo", "thumbnail"],
);
const ENTITLEMENT_SUBS: &[AttributeDef] =
    &multi_value_subs(string("value", "The value of an entitlement."), &[]);
const ROLE_SUBS: &[AttributeDef] = &multi_value_subs(string("value", "The value of a role."), &[]);
const X509_SUBS: &[AttributeDef] = &multi_value_subs(
    attr(
        "value",
        AttrType::Binary,
        "The value of an X.509 certificate (base64).",
    ),
    &[],
);

// RFC 7643 §4.1.2 / §8.7.1: physical mailing addresses.
const ADDRESS_SUBS: &[AttributeDef] = &[
    string(
        "formatted",
        "The full mailing address, formatted for display or use with a mailing label.",
    ),
    string("streetAddress", "The full street address component."),
    string("locality", "The city or locality component."),
    string("region", "The state or region component."),
    string("postalCode", "The zip code or postal code component."),
    string(
        "country",
        "The country name component (ISO 3166-1 alpha-2).",
    ),
    string("type", TYPE_DESC).canonical(&["work", "home", "other"]),
    attr("primary", AttrType::Boolean, PRIMARY_DESC),
];

// RFC 7643 §4.1.2: group memberships are managed through the Group resource, hence readOnly.
const USER_GROUP_SUBS: &[AttributeDef] = &[
    string("value", "The identifier of the User's group.").read_only(),
    reference(
        "$ref",
        "The URI of the corresponding 'Group' resource.",
        &["User", "Group"],
    )
    .read_only(),
    string("display", DISPLAY_DESC).read_only(),
    string(
        "type",
        "Whether the membership is direct or indirect (nested groups).",
    )
    .canonical(&["direct", "indirect"])
    .read_only(),
];

/// RFC 7643 §3.1: `externalId`, caseExact and owned by the provisioning client.
const EXTERNAL_ID: AttributeDef = string(
    "externalId",
    "A String that is an identifier for the resource as defined by the provisioning client.",
)
.case_sensitive();

/// RFC 7643 §4.1 / §8.7.1: the core User schema.
pub static USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: &[
        string(
            "userName",
            "Unique identifier for the User, used to authenticate.",
        )
        .mandatory()
        .unique(Uniqueness::Server),
        complex("name", "The components of the user's real name.", NAME_SUBS),
        string(
            "displayName",
            "The name of the User, suitable for display to end-users.",
        ),
        string(
            "nickName",
            "The casual way to address the user in real life.",
        ),
        reference(
            "profileUrl",
            "URL of the User's online profile.",
            &["external"],
        ),
        string("title", "The user's title, such as 'Vice President'."),
        string(
            "userType",
            "The relationship between the organization and the User.",
        ),
        string(
            "preferredLanguage",
            "Indicates the User's preferred written or spoken language.",
        ),
        string(
            "locale",
            "Used to indicate the User's default location for localization purposes.",
        ),
        string(
            "timezone",
            "The User's time zone in the 'Olson' time zone database format.",
        ),
        attr(
            "active",
            AttrType::Boolean,
            "The User's administrative status.",
        ),
        // RFC 7643 §4.1.1 / §7: the cleartext password is never returned.
        string(
            "password",
            "The User's cleartext password, to set an initial password or reset it.",
        )
        .mutable(Mutability::WriteOnly)
        .returned_as(Returned::Never),
        complex("emails", "Email addresses for the User.", EMAIL_SUBS).multi(),
        complex("phoneNumbers", "Phone numbers for the User.", PHONE_SUBS).multi(),
        complex("ims", "Instant messaging addresses for the User.", IM_SUBS).multi(),
        complex("photos", "URLs of photos of the User.", PHOTO_SUBS).multi(),
        complex(
            "addresses",
            "A physical mailing address for this User.",
            ADDRESS_SUBS,
        )
        .multi(),
        complex(
            "groups",
            "A list of groups to which the user belongs.",
            USER_GROUP_SUBS,
        )
        .multi()
        .read_only(),
        complex(
            "entitlements",
            "A list of entitlements for the User.",
            ENTITLEMENT_SUBS,
        )
        .multi(),
        complex("roles", "A list of roles for the User.", ROLE_SUBS).multi(),
        complex(
            "x509Certificates",
            "A list of certificates issued to the User.",
            X509_SUBS,
        )
        .multi(),
        EXTERNAL_ID,
    ],
};

/// RFC 7643 §4.2 / §8.7.1: the core Group schema.
pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: &[
        // RFC 7643 §4.2 makes displayName REQUIRED; uniqueness "server" is our own policy
        // (case-insensitive, as caseExact is false).
        string("displayName", "A human-readable name for the Group.")
            .mandatory()
            .unique(Uniqueness::Server),
        complex(
            "members",
            "A list of members of the Group.",
            &[
                string("value", "Identifier of the member of this Group.")
                    .mutable(Mutability::Immutable),
                reference(
                    "$ref",
                    "The URI corresponding to a SCIM resource that is a member of this Group.",
                    &["User", "Group"],
                )
                .mutable(Mutability::Immutable),
                // Computed from the member resource when the group is served.
                string("display", DISPLAY_DESC).read_only(),
                string("type", "A label indicating the type of resource.")
                    .canonical(&["User", "Group"])
                    .mutable(Mutability::Immutable),
            ],
        )
        .multi(),
    ],
};

/// RFC 7643 §4.3 / §8.7.2: the enterprise User extension.
pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person.",
        ),
        string("costCenter", "Identifies the name of a cost center."),
        string("organization", "Identifies the name of an organization."),
        string("division", "Identifies the name of a division."),
        string("department", "Identifies the name of a department."),
        complex(
            "manager",
            "The User's manager.",
            &[
                string(
                    "value",
                    "The id of the SCIM resource representing the User's manager.",
                ),
                reference(
                    "$ref",
                    "The URI of the SCIM resource representing the User's manager.",
                    &["User"],
                ),
                // RFC 7643 §4.3: displayName of the manager is READ-ONLY.
                string("displayName", "The displayName of the User's manager.").read_only(),
            ],
        ),
    ],
};

/// Omni's user metadata extension; `lastLogin` is maintained by the server.
pub static OMNI_USER: SchemaDef = SchemaDef {
    id: OMNI_USER_EXTENSION_SCHEMA,
    name: "OmniUser",
    description: "Omni user metadata",
    attributes: &[attr(
        "lastLogin",
        AttrType::DateTime,
        "The time of the User's last successful login.",
    )
    .read_only()],
};

/// Omni's organisation-defined user attributes: keys are defined per organization at run
/// time, so the schema has no fixed attributes.
pub static USER_ATTRIBUTE: SchemaDef = SchemaDef {
    id: USER_ATTRIBUTE_SCHEMA,
    name: "UserAttribute",
    description: "Organization-defined user attributes",
    attributes: &[],
};

/// RFC 7643 §3.1: attributes common to every resource, outside any schema.
pub static COMMON: &[AttributeDef] = &[
    string(
        "id",
        "A unique identifier for a SCIM resource as defined by the service provider.",
    )
    .case_sensitive()
    .read_only()
    .returned_as(Returned::Always)
    .unique(Uniqueness::Server),
    EXTERNAL_ID,
    complex(
        "meta",
        "A complex attribute containing resource metadata.",
        &[
            string(
                "resourceType",
                "The name of the resource type of the resource.",
            )
            .case_sensitive()
            .read_only(),
            attr(
                "created",
                AttrType::DateTime,
                "The DateTime that the resource was added to the service provider.",
            )
            .read_only(),
            attr(
                "lastModified",
                AttrType::DateTime,
                "The most recent DateTime that the details of this resource were updated.",
            )
            .read_only(),
            reference(
                "location",
                "The URI of the resource being returned.",
                &["uri"],
            )
            .case_sensitive()
            .read_only(),
            string("version", "The version (entity tag) of the resource.")
                .case_sensitive()
                .read_only(),
        ],
    )
    .read_only(),
];

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
    extensions: &[],
};

/// Every schema served at `/Schemas` (RFC 7644 §4), core schemas first.
pub fn all_schemas() -> [&'static SchemaDef; 5] {
    [&USER, &GROUP, &ENTERPRISE_USER, &OMNI_USER, &USER_ATTRIBUTE]
}

/// Every resource type served at `/ResourceTypes` (RFC 7644 §4).
pub fn all_resource_types() -> [&'static ResourceTypeDef; 2] {
    [&USER_RESOURCE, &GROUP_RESOURCE]
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

#[cfg(test)]
mod tests {
    use super::*;

    const ENTERPRISE: Option<&str> = Some(ENTERPRISE_USER_SCHEMA);

    #[test]
    fn every_rfc_7643_user_attribute_and_sub_attribute_resolves() {
        // RFC 7643 §8.7.1, in the order the RFC lists them.
        let names: &[(&str, &[&str])] = &[
            ("userName", &[]),
            (
                "name",
                &[
                    "formatted",
                    "familyName",
                    "givenName",
                    "middleName",
                    "honorificPrefix",
                    "honorificSuffix",
                ],
            ),
            ("displayName", &[]),
            ("nickName", &[]),
            ("profileUrl", &[]),
            ("title", &[]),
            ("userType", &[]),
            ("preferredLanguage", &[]),
            ("locale", &[]),
            ("timezone", &[]),
            ("active", &[]),
            ("password", &[]),
            ("emails", &["value", "display", "type", "primary"]),
            ("phoneNumbers", &["value", "display", "type", "primary"]),
            ("ims", &["value", "display", "type", "primary"]),
            ("photos", &["value", "display", "type", "primary"]),
            (
                "addresses",
                &[
                    "formatted",
                    "streetAddress",
                    "locality",
                    "region",
                    "postalCode",
                    "country",
                    "type",
                    "primary",
                ],
            ),
            ("groups", &["value", "$ref", "display", "type"]),
            ("entitlements", &["value", "display", "type", "primary"]),
            ("roles", &["value", "display", "type", "primary"]),
            ("x509Certificates", &["value", "display", "type", "primary"]),
        ];
        for (attr, subs) in names {
            let (def, _) = USER_RESOURCE
                .resolve(None, &attr.to_uppercase(), None)
                .unwrap_or_else(|| panic!("{attr} does not resolve"));
            assert_eq!(def.name, *attr);
            for sub in *subs {
                let found =
                    USER_RESOURCE.resolve(Some(USER_SCHEMA), attr, Some(&sub.to_lowercase()));
                let (_, sub_def) = found.unwrap_or_else(|| panic!("{attr}.{sub} does not resolve"));
                assert_eq!(sub_def.map(|d| d.name), Some(*sub));
            }
            assert_eq!(
                def.sub_attributes.len(),
                subs.len(),
                "{attr} has extra sub-attributes"
            );
        }
        // The list above plus externalId is the whole schema.
        assert_eq!(USER.attributes.len(), names.len() + 1);
    }

    #[test]
    fn resolve_answers_the_table_of_paths() {
        // (resource type, schema, attribute, sub-attribute, expected canonical names)
        type Case = (
            &'static ResourceTypeDef,
            Option<&'static str>,
            &'static str,
            Option<&'static str>,
            Option<(&'static str, Option<&'static str>)>,
        );
        let cases: &[Case] = &[
            (
                &USER_RESOURCE,
                None,
                "USERNAME",
                None,
                Some(("userName", None)),
            ),
            (
                &USER_RESOURCE,
                Some("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"),
                "emails",
                Some("Value"),
                Some(("emails", Some("value"))),
            ),
            (
                &USER_RESOURCE,
                ENTERPRISE,
                "Manager",
                Some("DISPLAYNAME"),
                Some(("manager", Some("displayName"))),
            ),
            (
                &USER_RESOURCE,
                ENTERPRISE,
                "employeenumber",
                None,
                Some(("employeeNumber", None)),
            ),
            (&USER_RESOURCE, None, "employeeNumber", None, None),
            (
                &USER_RESOURCE,
                Some(OMNI_USER_EXTENSION_SCHEMA),
                "lastlogin",
                None,
                Some(("lastLogin", None)),
            ),
            (
                &USER_RESOURCE,
                Some(USER_ATTRIBUTE_SCHEMA),
                "anything",
                None,
                None,
            ),
            (&USER_RESOURCE, None, "id", None, Some(("id", None))),
            (
                &USER_RESOURCE,
                None,
                "META",
                Some("lastmodified"),
                Some(("meta", Some("lastModified"))),
            ),
            (
                &USER_RESOURCE,
                None,
                "externalid",
                None,
                Some(("externalId", None)),
            ),
            (&USER_RESOURCE, ENTERPRISE, "id", None, None),
            (&USER_RESOURCE, None, "userName", Some("value"), None),
            (&USER_RESOURCE, None, "emails", Some("nope"), None),
            (&USER_RESOURCE, None, "nope", None, None),
            (
                &USER_RESOURCE,
                Some("urn:example:unknown"),
                "userName",
                None,
                None,
            ),
            (
                &GROUP_RESOURCE,
                None,
                "displayname",
                None,
                Some(("displayName", None)),
            ),
            (
                &GROUP_RESOURCE,
                None,
                "members",
                Some("$REF"),
                Some(("members", Some("$ref"))),
            ),
            (
                &GROUP_RESOURCE,
                None,
                "externalId",
                None,
                Some(("externalId", None)),
            ),
            (
                &GROUP_RESOURCE,
                Some(GROUP_SCHEMA),
                "meta",
                Some("version"),
                Some(("meta", Some("version"))),
            ),
            (&GROUP_RESOURCE, ENTERPRISE, "manager", None, None),
            (&GROUP_RESOURCE, None, "userName", None, None),
        ];
        for (rt, schema, attr, sub, expected) in cases {
            let got = rt
                .resolve(*schema, attr, *sub)
                .map(|(a, s)| (a.name, s.map(|s| s.name)));
            assert_eq!(got, *expected, "{schema:?} {attr} {sub:?} on {}", rt.id);
        }
    }

    #[test]
    fn user_schema_json_carries_the_rfc_characteristics() {
        let json = USER.to_json("https://example.com/scim/v2/");
        let attrs = json["attributes"].as_array().cloned().unwrap_or_default();
        // A missing attribute yields null, which then fails the assertions below.
        let by_name = |name: &str| {
            let found = attrs.iter().find(|a| a["name"] == name);
            found.cloned().unwrap_or_default()
        };
        let user_name = by_name("userName");
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        let password = by_name("password");
        assert_eq!(password["returned"], "never");
        assert_eq!(password["mutability"], "writeOnly");
        let emails = by_name("emails");
        assert_eq!(emails["multiValued"], true);
        assert_eq!(
            emails["subAttributes"][2]["canonicalValues"],
            json!(["work", "home", "other"])
        );
        assert!(emails.get("caseExact").is_none());
        assert_eq!(by_name("profileUrl")["referenceTypes"], json!(["external"]));
        assert_eq!(json["schemas"], json!([SCHEMA_SCHEMA]));
        assert_eq!(json["id"], USER_SCHEMA);
        assert_eq!(json["meta"]["resourceType"], "Schema");
        assert_eq!(
            json["meta"]["location"],
            "https://example.com/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
        );
    }

    #[test]
    fn every_schema_serialises_with_its_id_and_attribute_count() {
        for schema in all_schemas() {
            let json = schema.to_json("https://h");
            assert_eq!(json["id"], schema.id);
            assert_eq!(
                json["attributes"].as_array().map(Vec::len),
                Some(schema.attributes.len())
            );
            assert_eq!(
                schema_by_id(&schema.id.to_uppercase()).map(|s| s.id),
                Some(schema.id)
            );
        }
        assert!(schema_by_id("urn:example:nope").is_none());
    }

    #[test]
    fn resource_types_serialise_as_rfc_7643_section_6() {
        let user = USER_RESOURCE.to_json("https://example.com/v2");
        assert_eq!(
            user,
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "User Account",
                "schema": USER_SCHEMA,
                "schemaExtensions": [
                    {"schema": ENTERPRISE_USER_SCHEMA, "required": false},
                    {"schema": USER_ATTRIBUTE_SCHEMA, "required": false},
                    {"schema": OMNI_USER_EXTENSION_SCHEMA, "required": false},
                ],
                "meta": {"resourceType": "ResourceType", "location": "https://example.com/v2/ResourceTypes/User"},
            })
        );
        let group = GROUP_RESOURCE.to_json("https://example.com/v2");
        assert_eq!(group["schemaExtensions"], json!([]));
        assert_eq!(group["endpoint"], "/Groups");
        assert_eq!(all_resource_types().map(|r| r.id), ["User", "Group"]);
    }

    #[test]
    fn characteristics_follow_the_rfc_for_the_special_attributes() {
        let get = |rt: &ResourceTypeDef, schema, attr, sub| {
            rt.resolve(schema, attr, sub).map(|(a, s)| s.unwrap_or(a))
        };
        // (definition, mutability, returned, case exact, uniqueness)
        let cases = [
            (
                get(&USER_RESOURCE, None, "id", None),
                Mutability::ReadOnly,
                Returned::Always,
                true,
                Uniqueness::Server,
            ),
            (
                get(&USER_RESOURCE, None, "externalId", None),
                Mutability::ReadWrite,
                Returned::Default,
                true,
                Uniqueness::None,
            ),
            (
                get(&USER_RESOURCE, None, "meta", Some("created")),
                Mutability::ReadOnly,
                Returned::Default,
                false,
                Uniqueness::None,
            ),
            (
                get(&USER_RESOURCE, None, "groups", None),
                Mutability::ReadOnly,
                Returned::Default,
                false,
                Uniqueness::None,
            ),
            (
                get(&USER_RESOURCE, None, "password", None),
                Mutability::WriteOnly,
                Returned::Never,
                false,
                Uniqueness::None,
            ),
            (
                get(&USER_RESOURCE, ENTERPRISE, "manager", Some("displayName")),
                Mutability::ReadOnly,
                Returned::Default,
                false,
                Uniqueness::None,
            ),
            (
                get(
                    &USER_RESOURCE,
                    Some(OMNI_USER_EXTENSION_SCHEMA),
                    "lastLogin",
                    None,
                ),
                Mutability::ReadOnly,
                Returned::Default,
                false,
                Uniqueness::None,
            ),
            (
                get(&GROUP_RESOURCE, None, "displayName", None),
                Mutability::ReadWrite,
                Returned::Default,
                false,
                Uniqueness::Server,
            ),
            (
                get(&GROUP_RESOURCE, None, "members", Some("value")),
                Mutability::Immutable,
                Returned::Default,
                false,
                Uniqueness::None,
            ),
        ];
        for (def, mutability, returned, case_exact, uniqueness) in cases {
            let Some(def) = def else {
                panic!("a special attribute does not resolve")
            };
            assert_eq!(
                (def.mutability, def.returned, def.case_exact, def.uniqueness),
                (mutability, returned, case_exact, uniqueness),
                "{}",
                def.name
            );
        }
        let x509 = USER
            .attribute("x509certificates")
            .and_then(|a| a.sub_attribute("value"));
        assert_eq!(x509.map(|d| d.ty), Some(AttrType::Binary));
        assert!(USER_ATTRIBUTE.attributes.is_empty());
    }
}
