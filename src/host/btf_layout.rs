//! The memory layout of a BTF type, flattened into named fields at byte
//! offsets: what Python needs to turn raw records, map keys and values, and
//! globals into numpy columns without any per-plugin code.
//!
//! Nested structs are flattened with dotted names (`key.pid`); arrays keep
//! their shape (`buckets[470]` is one field of shape `[470]`); `char` arrays are
//! strings; unions, bitfields and arrays of structs stay opaque bytes, so no
//! byte of a record is ever dropped without a field that holds it.

use libbpf_rs::btf::types;
use libbpf_rs::btf::types::IntEncoding;
use libbpf_rs::btf::types::MemberAttr;
use libbpf_rs::btf::BtfKind;
use libbpf_rs::btf::BtfType;
use libbpf_rs::btf::HasSize as _;
use libbpf_rs::btf::TypeId;
use libbpf_rs::Btf;

/// What one element of a field is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Int {
        signed: bool,
    },
    Bool,
    /// A C `char`: arrays of them are strings.
    Char,
    Float,
    /// Enumerators as (name, value); i128 holds every u64 and i64 value.
    Enum {
        signed: bool,
        values: Vec<(String, i128)>,
    },
    /// Bytes with no finer type: unions, bitfield storage, arrays of structs.
    Opaque,
}

impl Scalar {
    /// Short name, as Python sees it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Int { signed: true } => "int",
            Self::Int { signed: false } => "uint",
            Self::Bool => "bool",
            Self::Char => "char",
            Self::Float => "float",
            Self::Enum { .. } => "enum",
            Self::Opaque => "bytes",
        }
    }
}

/// One field of a flattened type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Dotted path from the outer type; empty for a type that is not a struct.
    pub name: String,
    /// Bytes from the start of the outer type.
    pub offset: usize,
    pub scalar: Scalar,
    /// Bytes per element.
    pub size: usize,
    /// Array dimensions, outermost first; empty for a single element.
    pub shape: Vec<usize>,
}

/// A type flattened into fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The C name (`struct event`, `u32`), or "(anon)".
    pub type_name: String,
    pub size: usize,
    pub fields: Vec<Field>,
}

/// Flattens the type `id` of `btf`. None if it has no size (void, functions).
pub fn layout_of(btf: &Btf<'_>, id: TypeId) -> Option<Layout> {
    let ty = btf.type_by_id::<BtfType<'_>>(id)?;
    let size = size_of_type(ty)?;
    let mut fields = Vec::new();
    flatten(btf, ty, String::new(), 0, &[], &mut fields);
    Some(Layout {
        type_name: type_name(ty),
        size,
        fields,
    })
}

/// The C spelling of a type's name (`const`/`volatile` dropped, typedef
/// names kept), for messages.
pub fn type_name(ty: BtfType<'_>) -> String {
    let mut ty = ty;
    while ty.is_mod() {
        match ty.next_type() {
            Some(next) => ty = next,
            None => break,
        }
    }
    let name = ty
        .name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "(anon)".to_string());
    match ty.kind() {
        BtfKind::Struct => format!("struct {name}"),
        BtfKind::Union => format!("union {name}"),
        BtfKind::Enum | BtfKind::Enum64 => format!("enum {name}"),
        BtfKind::Ptr => "pointer".to_string(),
        BtfKind::Array => "array".to_string(),
        _ => name,
    }
}

/// Size in bytes of any sized type (modifiers and typedefs resolved).
pub fn size_of_type(ty: BtfType<'_>) -> Option<usize> {
    let ty = ty.skip_mods_and_typedefs();
    match ty.kind() {
        BtfKind::Int => types::Int::try_from(ty).ok().map(|t| t.size()),
        BtfKind::Float => types::Float::try_from(ty).ok().map(|t| t.size()),
        BtfKind::Enum => types::Enum::try_from(ty).ok().map(|t| t.size()),
        BtfKind::Enum64 => types::Enum64::try_from(ty).ok().map(|t| t.size()),
        BtfKind::Struct => types::Struct::try_from(ty).ok().map(|t| t.size()),
        BtfKind::Union => types::Union::try_from(ty).ok().map(|t| t.size()),
        BtfKind::Ptr => Some(8),
        BtfKind::Array => {
            let array = types::Array::try_from(ty).ok()?;
            Some(size_of_type(array.contained_type())? * array.capacity())
        }
        _ => None,
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn opaque(name: String, offset: usize, size: usize) -> Field {
    Field {
        name,
        offset,
        scalar: Scalar::Opaque,
        size: 1,
        shape: vec![size],
    }
}

/// Appends the fields of `ty` at `offset`; `shape` holds the dimensions of the
/// arrays around it (an array of structs is kept opaque, see the module doc).
fn flatten(
    btf: &Btf<'_>,
    ty: BtfType<'_>,
    name: String,
    offset: usize,
    shape: &[usize],
    out: &mut Vec<Field>,
) {
    let ty = ty.skip_mods_and_typedefs();
    let scalar = |scalar: Scalar, size: usize| Field {
        name: name.clone(),
        offset,
        scalar,
        size,
        shape: shape.to_vec(),
    };
    match ty.kind() {
        BtfKind::Int => {
            let Ok(int) = types::Int::try_from(ty) else {
                return;
            };
            let is_char = ty.name().is_some_and(|n| n == "char");
            if !matches!(int.size(), 1 | 2 | 4 | 8) {
                // __int128 and friends: no numpy integer holds them.
                out.push(opaque(
                    name,
                    offset,
                    int.size() * shape.iter().product::<usize>(),
                ));
                return;
            }
            let kind = match int.encoding {
                IntEncoding::Bool => Scalar::Bool,
                IntEncoding::Char => Scalar::Char,
                _ if is_char => Scalar::Char,
                IntEncoding::Signed => Scalar::Int { signed: true },
                IntEncoding::None => Scalar::Int { signed: false },
            };
            out.push(scalar(kind, int.size()));
        }
        BtfKind::Float => {
            if let Some(size) = size_of_type(ty) {
                out.push(scalar(Scalar::Float, size));
            }
        }
        BtfKind::Ptr => out.push(scalar(Scalar::Int { signed: false }, 8)),
        BtfKind::Enum | BtfKind::Enum64 => {
            // The two kinds differ only in how wide their enumerators are.
            let enumeration = match types::Enum::try_from(ty) {
                Ok(e) => Some((
                    e.is_signed(),
                    e.size(),
                    e.iter()
                        .map(|m| (os_name(m.name), i128::from(m.value)))
                        .collect::<Vec<_>>(),
                )),
                Err(ty) => types::Enum64::try_from(ty).ok().map(|e| {
                    let values = e.iter().map(|m| (os_name(m.name), m.value)).collect();
                    (e.is_signed(), e.size(), values)
                }),
            };
            if let Some((signed, size, values)) = enumeration {
                out.push(scalar(Scalar::Enum { signed, values }, size));
            }
        }
        BtfKind::Array => {
            let Ok(array) = types::Array::try_from(ty) else {
                return;
            };
            let element = array.contained_type().skip_mods_and_typedefs();
            let mut inner = shape.to_vec();
            inner.push(array.capacity());
            if element.is_composite() {
                // An array of structs does not fit one column per field.
                if let Some(size) = size_of_type(ty) {
                    let total = size * shape.iter().product::<usize>();
                    out.push(opaque(name, offset, total));
                }
                return;
            }
            flatten(btf, element, name, offset, &inner, out);
        }
        BtfKind::Struct => {
            let Ok(s) = types::Struct::try_from(ty) else {
                return;
            };
            for (index, member) in s.iter().enumerate() {
                let member_name = member
                    .name
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| format!("_{index}"));
                let Some(member_ty) = btf.type_by_id::<BtfType<'_>>(member.ty) else {
                    continue;
                };
                match member.attr {
                    MemberAttr::Normal { offset: bits } => flatten(
                        btf,
                        member_ty,
                        join(&name, &member_name),
                        offset + bits as usize / 8,
                        &[],
                        out,
                    ),
                    // Bitfields: the bytes that hold them, opaque.
                    MemberAttr::BitField { size, offset: bits } => {
                        let first = bits as usize / 8;
                        let last = (bits as usize + size as usize).div_ceil(8);
                        out.push(opaque(
                            join(&name, &member_name),
                            offset + first,
                            last - first,
                        ));
                    }
                }
            }
        }
        BtfKind::Union => {
            if let Some(size) = size_of_type(ty) {
                out.push(opaque(name, offset, size));
            }
        }
        _ => {}
    }
}

fn os_name(name: Option<&std::ffi::OsStr>) -> String {
    name.map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runq_layout(name: &str) -> Layout {
        let btf = Btf::from_raw("runq", crate::runq::object())
            .expect("the object parses")
            .expect("the object has BTF");
        let ty = btf
            .type_by_name::<types::Struct<'_>>(name)
            .expect("the struct is in the BTF");
        layout_of(&btf, ty.type_id()).expect("structs have a layout")
    }

    fn field<'a>(layout: &'a Layout, name: &str) -> &'a Field {
        layout
            .fields
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name} in {layout:?}"))
    }

    #[test]
    fn a_record_layout_follows_the_c_layout_rules() {
        // struct runq_event in runq.h: a u64, four u32, three u64, an s32, a
        // bool, padded to the u64 alignment.
        let layout = runq_layout("runq_event");
        assert_eq!(layout.type_name, "struct runq_event");
        assert_eq!(layout.size, 56);
        let offsets = layout
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.offset, f.size))
            .collect::<Vec<_>>();
        assert_eq!(
            offsets,
            [
                ("ts_ns", 0, 8),
                ("cpu", 8, 4),
                ("pid", 12, 4),
                ("tgid", 16, 4),
                ("prev_pid", 20, 4),
                ("cgroup_id", 24, 8),
                ("prev_cgroup_id", 32, 8),
                ("latency_ns", 40, 8),
                ("clock_correction_ns", 48, 4),
                ("preempted", 52, 1),
            ]
        );
        assert_eq!(
            field(&layout, "ts_ns").scalar,
            Scalar::Int { signed: false }
        );
        assert_eq!(
            field(&layout, "clock_correction_ns").scalar,
            Scalar::Int { signed: true }
        );
        assert_eq!(field(&layout, "preempted").scalar, Scalar::Bool);
    }

    #[test]
    fn arrays_keep_their_shape_and_char_arrays_are_strings() {
        let layout = runq_layout("runq_hist");
        let buckets = field(&layout, "buckets");
        assert_eq!((buckets.offset, &buckets.shape), (0, &vec![470]));
        let comm = field(&layout, "comm");
        assert_eq!(comm.scalar, Scalar::Char);
        assert_eq!(comm.shape, vec![16]);
        // 470 buckets, count, total_ns, wall_ns, max_ns, last_ns, then the two names.
        assert_eq!(comm.offset, 475 * 8);
        assert_eq!(layout.size, 475 * 8 + 16 + 128);
    }

    #[test]
    fn scalar_names_are_what_python_expects() {
        assert_eq!(Scalar::Int { signed: false }.name(), "uint");
        assert_eq!(Scalar::Opaque.name(), "bytes");
    }
}
