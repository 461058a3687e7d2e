//! One spelling for option values on the command line and in the JSON padv writes:
//! snake_case (`diff_of_agg`, `policy_logprob`), with the kebab-case spelling accepted as
//! well, so that a value copied out of a report works as a flag and old scripts keep working.

use std::ffi::OsStr;
use std::marker::PhantomData;
use std::str::FromStr;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::ValueEnum;

/// A clap value parser for the option enums of `padv-core`: parses with their `FromStr`
/// (which accepts `_` and `-` alike) and lists the snake_case names in `--help`.
#[derive(Debug)]
pub struct Named<T>(PhantomData<T>);

impl<T> Clone for Named<T> {
    fn clone(&self) -> Self {
        Named(PhantomData)
    }
}

/// The parser for `T`.
pub fn named<T>() -> Named<T> {
    Named(PhantomData)
}

/// The snake_case form of a canonical name.
fn snake(name: &str) -> String {
    name.replace('-', "_")
}

impl<T> TypedValueParser for Named<T>
where
    T: ValueEnum + FromStr + Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = value.to_string_lossy();
        <T as FromStr>::from_str(&text).map_err(|_| {
            let expected: Vec<String> = T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .map(|p| snake(p.get_name()))
                .collect();
            let flag = arg.map(|a| format!(" for '{a}'")).unwrap_or_default();
            clap::Error::raw(
                ErrorKind::InvalidValue,
                format!(
                    "invalid value '{text}'{flag}; expected one of: {}\n",
                    expected.join(", ")
                ),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            T::value_variants()
                .iter()
                .filter_map(|v| v.to_possible_value())
                .map(|p| {
                    let help = p.get_help().cloned();
                    let name = snake(p.get_name());
                    let v = PossibleValue::new(name);
                    match help {
                        Some(h) => v.help(h),
                        None => v,
                    }
                }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use padv_core::score::{Method, PaMode};

    #[test]
    fn both_spellings_parse_and_help_lists_snake_case() {
        let cmd = clap::Command::new("t");
        let p = named::<PaMode>();
        for s in ["diff_of_agg", "diff-of-agg"] {
            assert_eq!(
                p.parse_ref(&cmd, None, OsStr::new(s)).unwrap(),
                PaMode::DiffOfAgg
            );
        }
        let m = named::<Method>();
        assert_eq!(
            m.parse_ref(&cmd, None, OsStr::new("policy-logprob"))
                .unwrap(),
            Method::PolicyLogprob
        );
        let err = p.parse_ref(&cmd, None, OsStr::new("nope")).unwrap_err();
        assert!(err.to_string().contains("agg_of_diff"), "{err}");
        let names: Vec<String> = p
            .possible_values()
            .unwrap()
            .map(|v| v.get_name().to_string())
            .collect();
        assert_eq!(names, vec!["diff_of_agg", "agg_of_diff"]);
    }
}
