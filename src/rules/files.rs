//! Where rules come from: `--rules` files and directories in order (a
//! directory gives its `*.yaml`/`*.yml` regular files sorted by name, as
//! falco configuration.cpp `read_rules_file_directory`), `none` for no
//! rules, or the built-in edge ruleset when none is named.

use std::path::{Path, PathBuf};

use super::{LoadError, Priority, RuleFile, RuleSet, MAX_FILE_BYTES};

include!(concat!(env!("OUT_DIR"), "/kestrel_rules.yaml.z.len.rs"));
static DEFAULT_RULES_Z: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kestrel_rules.yaml.z"));

/// The built-in edge ruleset, shipped readable as configs/rules/kestrel_rules.yaml
/// and embedded compressed: inflated for each load, then freed.
pub fn default_rules() -> String {
    let bytes = crate::base::zlib::inflate(DEFAULT_RULES_Z, DEFAULT_RULES_LEN).unwrap_or_default();
    String::from_utf8(bytes.into_vec()).unwrap_or_default()
}
pub const DEFAULT_NAME: &str = "(built-in) kestrel_rules.yaml";

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read as _;
    let name = path.display().to_string();
    let fail = |m: String| LoadError::at(&name, 0, "", m);
    let f = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let meta = f.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mut text = Vec::new();
    f.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    if text.len() > MAX_FILE_BYTES {
        return Err(fail(format!("larger than {} MiB", MAX_FILE_BYTES >> 20)));
    }
    Ok(text)
}

/// The files a `--rules` argument stands for.
fn expand(arg: &str) -> Result<Vec<PathBuf>, LoadError> {
    let p = PathBuf::from(arg);
    if !p.is_dir() {
        return Ok(vec![p]);
    }
    let rd = std::fs::read_dir(&p).map_err(|e| LoadError::at(arg, 0, "", e.to_string()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.is_file())
        .filter(|f| matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    v.sort_unstable(); // paths in one directory are unique: the same order
    Ok(v)
}

/// Loads what the command line names; `Err` is the one line to print.
pub fn load(args: &[String], min_priority: Priority) -> Result<RuleSet, LoadError> {
    if args.iter().any(|a| a == "none") {
        if args.len() > 1 {
            return Err(LoadError::at(
                "--rules",
                0,
                "",
                "'none' cannot be combined with rule files",
            ));
        }
        return Ok(RuleSet::empty());
    }
    if args.is_empty() {
        let text = default_rules();
        let f = RuleFile {
            name: DEFAULT_NAME,
            text: text.as_bytes(),
        };
        return super::load(&[f], min_priority);
    }
    let mut names = Vec::new();
    for a in args {
        names.extend(expand(a)?);
    }
    let texts: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect::<Result<_, LoadError>>()?;
    let files: Vec<RuleFile<'_>> = texts
        .iter()
        .map(|(n, t)| RuleFile { name: n, text: t })
        .collect();
    super::load(&files, min_priority)
}
