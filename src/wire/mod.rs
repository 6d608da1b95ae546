//! Types without I/O that cross a process boundary or a module boundary:
//! the proof-task model ([`task`]), what a proof takes and gives
//! ([`proof`]), the prover protocol's messages ([`prover`]), the HTTP error
//! body ([`error`]) and the sender's transaction purposes ([`tx`]). The
//! aggregator's server and the prover worker both import them from here,
//! so neither depends on the other.

pub mod error;
pub mod proof;
pub mod prover;
pub mod task;
pub mod tx;

/// A string that names no member of a [`text_enum!`] set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {set} {value:?}")]
pub struct UnknownValue {
    pub set: &'static str,
    pub value: String,
}

/// A closed set of lowercase strings: the enum, its `ALL` list, `as_str`,
/// `FromStr` and `Display`. The database stores them in TEXT columns (with
/// CHECK constraints in the migrations, so the lists must agree) and the
/// metrics use them as label values.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::wire::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::wire::UnknownValue { set: stringify!($name), value: other.to_string() }),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;
