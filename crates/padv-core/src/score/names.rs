//! One macro for the option enums (aggregations, PA mode, method) so that their command-line
//! names, `Display`, `FromStr` and serde forms cannot drift apart.

/// A name that does not belong to an option enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of: {expected}")]
pub struct ParseNameError {
    /// Which option was being parsed ("token aggregation", "method", ...).
    pub what: &'static str,
    /// The rejected text.
    pub value: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

/// Defines a fieldless option enum with one canonical name per variant.
///
/// The canonical name is used by `Display`, by `FromStr` (which also accepts the name with
/// `_` and `-` swapped, so `diff_of_agg` and `policy-logprob` work on the command line) and by
/// clap's `ValueEnum` (behind the `clap` feature). Serde keeps its own `rename_all` given by
/// the caller, because the record and report formats are snake_case throughout.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$vmeta])*
                #[cfg_attr(feature = "clap", value(name = $text))]
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order (the order grids enumerate them in).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical name (what `Display` prints and labels contain).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::score::ParseNameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let wanted = s.trim().to_ascii_lowercase();
                for v in Self::ALL {
                    let canonical = v.name();
                    if wanted == canonical
                        || wanted == canonical.replace('-', "_")
                        || wanted == canonical.replace('_', "-")
                    {
                        return Ok(*v);
                    }
                }
                Err($crate::score::ParseNameError {
                    what: $what,
                    value: s.to_string(),
                    expected: Self::ALL
                        .iter()
                        .map(|v| v.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    };
}

pub(crate) use named_enum;
