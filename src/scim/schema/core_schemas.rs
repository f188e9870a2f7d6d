//! The core schemas' attribute tables: User (RFC 7643 §4.1, §8.7.1), Group (RFC 7643 §4.2)
//! and the attributes common to every resource (RFC 7643 §3.1).

use super::build::{attr, complex, reference, string};
use super::{AttrType, AttributeDef, Mutability, Returned, SchemaDef, Uniqueness};
use crate::scim::{GROUP_SCHEMA, USER_SCHEMA};

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
