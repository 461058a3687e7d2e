//! Input expansion: a directory argument stands for every `*.json` / `*.jsonl` file below it,
//! in natural order, so that `10.json` follows `9.json` and reports list logs the way the
//! datasets number them.

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use super::FormatError;

/// Expand `paths`: files are kept as given (whatever their extension); a directory becomes its
/// `*.json` and `*.jsonl` files, recursively, in natural order. Hidden entries (`.name`) are
/// skipped, and symbolic links to directories are not followed (no cycles). Other files
/// (README, LICENSE) are ignored by extension. A directory without any input file is an error,
/// since reading nothing is almost certainly a wrong path.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FormatError> {
    expand_inputs_excluding(paths, &[])
}

/// [`expand_inputs`], leaving out of directory expansion every file equal to or below a path
/// of `exclude` (compared after resolving both, so `out/../out` and a relative path match).
/// Paths given explicitly as files are kept: excluding is for folders a command writes into.
pub fn expand_inputs_excluding(
    paths: &[PathBuf],
    exclude: &[PathBuf],
) -> Result<Vec<PathBuf>, FormatError> {
    // An excluded path that does not exist yet cannot hold inputs.
    let exclude: Vec<PathBuf> = exclude
        .iter()
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    let excluded = |p: &Path| {
        !exclude.is_empty()
            && fs::canonicalize(p).is_ok_and(|c| exclude.iter().any(|x| c.starts_with(x)))
    };
    let mut out = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|source| FormatError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.retain(|p| !excluded(p));
            if found.is_empty() {
                return Err(FormatError::EmptyDirectory { path: path.clone() });
            }
            found.sort_by(|a, b| natural_path_cmp(a, b));
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), FormatError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FormatError::Io { path, source }
    };
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(io_err(&path))?;
        if file_type.is_dir() {
            walk(&path, found)?;
        } else if (file_type.is_file() || (file_type.is_symlink() && path.is_file()))
            && has_input_extension(&path)
        {
            found.push(path);
        }
    }
    Ok(())
}

fn has_input_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("jsonl"))
}

/// Compare paths component by component in natural order.
fn natural_path_cmp(a: &Path, b: &Path) -> Ordering {
    let mut ca = a.components();
    let mut cb = b.components();
    loop {
        match (ca.next(), cb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = natural_cmp(
                    &x.as_os_str().to_string_lossy(),
                    &y.as_os_str().to_string_lossy(),
                );
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Natural string order: runs of ASCII digits compare by numeric value ("2" < "10"), other
/// characters compare as usual. Ties (e.g. "01" vs "1") fall back to plain string order so the
/// order is total.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let x = trim_zeros(&ab[si..i]);
            let y = trim_zeros(&bb[sj..j]);
            // Without leading zeros, a longer digit run is a larger number; equal lengths
            // compare digit by digit.
            let ord = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            // Byte order on UTF-8 agrees with char order.
            let ord = ab[i].cmp(&bb[j]);
            if ord != Ordering::Equal {
                return ord;
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j)).then_with(|| a.cmp(b))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_sorts_numbers_by_value() {
        let mut names = vec![
            "10.json", "2.json", "1.json", "b.json", "a10.json", "a9.json", "100.json",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            ["1.json", "2.json", "10.json", "100.json", "a9.json", "a10.json", "b.json"]
        );
    }

    #[test]
    fn natural_order_is_total_on_leading_zeros_and_prefixes() {
        assert_eq!(natural_cmp("1", "01"), "1".cmp("01"));
        assert_eq!(natural_cmp("a", "a1"), Ordering::Less);
        assert_eq!(natural_cmp("x2y", "x2y"), Ordering::Equal);
        assert_eq!(natural_cmp("x2z", "x2y"), Ordering::Greater);
    }

    #[test]
    fn directories_expand_recursively_in_natural_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("B")).unwrap();
        fs::create_dir_all(root.join(".hidden")).unwrap();
        for f in [
            "10.json",
            "2.json",
            "README.md",
            "LICENSE",
            "x.JSONL",
            "B/1.json",
            ".hidden/3.json",
            ".5.json",
        ] {
            fs::write(root.join(f), "{}").unwrap();
        }
        let got = expand_inputs(&[root.to_path_buf()]).unwrap();
        let rel: Vec<String> = got
            .iter()
            .map(|p| {
                p.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        assert_eq!(rel, ["2.json", "10.json", "B/1.json", "x.JSONL"]);
    }

    #[test]
    fn files_are_kept_and_missing_or_empty_inputs_fail() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("log.txt");
        fs::write(&txt, "{}").unwrap();
        assert_eq!(
            expand_inputs(std::slice::from_ref(&txt)).unwrap(),
            vec![txt.clone()]
        );
        let missing = dir.path().join("nope.json");
        assert!(matches!(
            expand_inputs(&[missing]),
            Err(FormatError::Io { .. })
        ));
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(matches!(
            expand_inputs(&[empty]),
            Err(FormatError::EmptyDirectory { .. })
        ));
    }
}
