//! Const builders for the attribute tables. RFC 7643 §2.2 defines the defaults used by
//! `attr` (required false, caseExact false, mutability readWrite, returned default,
//! uniqueness none), so each definition only spells out where it departs from them, as
//! RFC 7643 §8.7 does.

use super::{AttrType, AttributeDef, Mutability, Returned, Uniqueness};

pub(super) const fn attr(
    name: &'static str,
    ty: AttrType,
    description: &'static str,
) -> AttributeDef {
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

pub(super) const fn string(name: &'static str, description: &'static str) -> AttributeDef {
    attr(name, AttrType::String, description)
}

pub(super) const fn complex(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [AttributeDef],
) -> AttributeDef {
    let mut def = attr(name, AttrType::Complex, description);
    def.sub_attributes = sub_attributes;
    def
}

pub(super) const fn reference(
    name: &'static str,
    description: &'static str,
    reference_types: &'static [&'static str],
) -> AttributeDef {
    let mut def = attr(name, AttrType::Reference, description);
    def.reference_types = reference_types;
    def
}

impl AttributeDef {
    pub(super) const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    pub(super) const fn mandatory(mut self) -> Self {
        self.required = true;
        self
    }
    pub(super) const fn case_sensitive(mut self) -> Self {
        self.case_exact = true;
        self
    }
    pub(super) const fn mutable(mut self, mutability: Mutability) -> Self {
        self.mutability = mutability;
        self
    }
    pub(super) const fn read_only(self) -> Self {
        self.mutable(Mutability::ReadOnly)
    }
    pub(super) const fn returned_as(mut self, returned: Returned) -> Self {
        self.returned = returned;
        self
    }
    pub(super) const fn unique(mut self, uniqueness: Uniqueness) -> Self {
        self.uniqueness = uniqueness;
        self
    }
    pub(super) const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }
}
