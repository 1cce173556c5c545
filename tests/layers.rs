//! The layers import one way. Each top-level module of `src/` sits in one layer of [`LAYERS`]
//! and may name (`crate::…`, in `use` lines or inline paths) only modules of the layers below
//! its own; `main.rs` is checked the same way through its `authbridge::…` paths. A module that
//! is in no layer fails the test too: place it before using it.
//!
//! `cargo test --test layers -- --nocapture` prints the import table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. Protocol rules (`oauth`), the store and the vault know nothing of the rest;
/// the HTTP surface sits on top of the domain, and only `app` (the wiring) and `main` see it.
/// Modules in one layer may not import each other either.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves: time, randomness, route paths",
        &["clock", "random", "routes"],
    ),
    // The identifiers sit below the store, not among the leaves, because a fresh id is drawn
    // from `random`; the store's columns and every layer above name them, so none may live
    // in `store` or `oauth` (same layer) or above.
    (
        "identifiers (client, user, grant, family, token hash)",
        &["ids"],
    ),
    // The protocol rules sit below the store: its columns hold their values (redirect and
    // resource URIs, code challenges, scope sets), and they never name the store.
    ("protocol rules", &["oauth"]),
    ("storage, encryption", &["store", "vault"]),
    ("configuration", &["config"]),
    ("logging", &["telemetry"]),
    ("upstream providers", &["upstream"]),
    ("metrics (they count upstream calls)", &["monitoring"]),
    ("keys, JWTs, opaque tokens", &["tokens"]),
    ("OAuth clients", &["clients"]),
    ("grant flows", &["grants"]),
    (
        "web sessions (the console and the connected-apps page)",
        &["sessions"],
    ),
    ("the operator console's figures and warnings", &["console"]),
    ("background housekeeping", &["housekeeping"]),
    ("start-up steps", &["bootstrap"]),
    (
        "HTTP endpoints and the gateway (gateway mode's MCP proxy)",
        &["http", "gateway"],
    ),
    ("wiring", &["app"]),
    ("the command", &["main"]),
];

/// `lib.rs` only declares the modules.
const UNCHECKED: &[&str] = &["lib"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// One `crate::<module>` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Import {
    file: PathBuf,
    line: usize,
    from: String,
    to: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/http/token.rs` → `http`, `src/app.rs` → `app`.
fn top_module(src: &Path, file: &Path) -> String {
    let first = file
        .strip_prefix(src)
        .expect("below src/")
        .components()
        .next()
        .expect("a file name");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_owned()
}

/// The code alone: comments removed, the contents of string and character literals blanked
/// (a `"crate::x"` in a message is no import).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Keeps line breaks so that line numbers stay right.
    let skip = |out: &mut String, skipped: &[char]| {
        out.extend(skipped.iter().filter(|&&c| c == '\n'));
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let after_ident = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && next == Some('/') {
            let end = chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |p| i + p);
            i = end;
        } else if c == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < chars.len() && depth > 0 {
                match (chars[j], chars.get(j + 1)) {
                    ('*', Some('/')) => (depth, j) = (depth - 1, j + 2),
                    ('/', Some('*')) => (depth, j) = (depth + 1, j + 2),
                    _ => j += 1,
                }
            }
            skip(&mut out, &chars[i..j]);
            i = j;
        } else if c == 'r' && !after_ident && matches!(next, Some('"' | '#')) {
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let closing: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body = i + 2 + hashes;
            let end = (body..chars.len())
                .find(|&j| chars[j..].starts_with(&closing))
                .map_or(chars.len(), |j| j + closing.len());
            out.push_str("\"\"");
            skip(&mut out, &chars[i..end]);
            i = end;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            skip(&mut out, &chars[i..(j + 1).min(chars.len())]);
            i = j + 1;
        } else if c == '\'' && next == Some('\\') {
            // '\n', '\'', '\u{..}'
            let end = (i + 2..chars.len())
                .find(|&j| chars[j] == '\'' && j > i + 2)
                .map_or(chars.len(), |j| j + 1);
            out.push_str("' '");
            i = end;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module named right after `<root>::` (a path or a `{…}` group), with its line.
fn referenced_modules(text: &str, root: &str) -> Vec<(usize, String)> {
    let needle = format!("{root}::");
    let mut found = Vec::new();
    let mut start = 0;
    while let Some(offset) = text[start..].find(&needle) {
        let at = start + offset;
        start = at + needle.len();
        if text[..at].chars().next_back().is_some_and(is_ident) {
            continue; // `foo_crate::`, not `crate::`
        }
        let line = text[..at].matches('\n').count() + 1;
        let rest = &text[start..];
        if let Some(group) = rest.strip_prefix('{') {
            found.extend(group_heads(group).into_iter().map(|m| (line, m)));
        } else {
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if !name.is_empty() {
                found.push((line, name));
            }
        }
    }
    found
}

/// The first segment of each item of a `{a, b::c, d::{e, f}}` group (without the opening brace).
fn group_heads(group: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0usize;
    for c in group.chars() {
        match c {
            '}' if depth == 0 => break,
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => items.push(String::new()),
            c if depth == 0 => items.last_mut().expect("one item").push(c),
            _ => {}
        }
    }
    items
        .iter()
        .map(|item| {
            item.trim_start()
                .chars()
                .take_while(|&c| is_ident(c))
                .collect::<String>()
        })
        .filter(|head| !head.is_empty())
        .collect()
}

fn imports() -> Vec<Import> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut all = Vec::new();
    for file in files {
        let from = top_module(&src, &file);
        let text = code_only(&std::fs::read_to_string(&file).expect("readable source"));
        let mut names = referenced_modules(&text, "crate");
        if from == "main" {
            names.extend(referenced_modules(&text, "authbridge"));
        }
        for (line, to) in names {
            if to != from && to != "self" {
                all.push(Import {
                    file: file.strip_prefix(&src).unwrap().to_path_buf(),
                    line,
                    from: from.clone(),
                    to,
                });
            }
        }
    }
    all
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let imports = imports();
    let mut table: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for import in &imports {
        table.entry(&import.from).or_default().insert(&import.to);
    }
    for (from, to) in &table {
        let to: Vec<&str> = to.iter().copied().collect();
        println!("{from:10} -> {}", to.join(", "));
    }

    let mut problems = BTreeSet::new();
    for import in &imports {
        if UNCHECKED.contains(&import.from.as_str()) {
            continue;
        }
        let place = format!("src/{}:{}", import.file.display(), import.line);
        match (layer_of(&import.from), layer_of(&import.to)) {
            (None, _) => problems.insert(format!(
                "{place}: module `{}` is in no layer: add it to LAYERS in tests/layers.rs",
                import.from
            )),
            (_, None) => problems.insert(format!(
                "{place}: `{}` imports `{}`, which is in no layer: add it to LAYERS in tests/layers.rs",
                import.from, import.to
            )),
            (Some(from), Some(to)) if to >= from => problems.insert(format!(
                "{place}: `{}` ({}) imports `{}` ({}), which is not below it",
                import.from, LAYERS[from].0, import.to, LAYERS[to].0
            )),
            _ => false,
        };
    }
    assert!(
        problems.is_empty(),
        "imports against the layer order:\n{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let unplaced: BTreeSet<String> = files
        .iter()
        .map(|f| top_module(&src, f))
        .filter(|m| !UNCHECKED.contains(&m.as_str()) && layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS): {unplaced:?}"
    );
}

#[test]
fn references_are_found_in_paths_and_groups_not_in_comments_or_strings() {
    let text = code_only(
        "use crate::oauth::pkce;\n\
         use crate::{store::Store, vault, tokens::{opaque, jwk}};\n\
         // use crate::http::AppState;\n\
         /* crate::app */ let url = \"https://crate::config\"; let q = '\"';\n\
         let s = r#\"crate::\"telemetry\"#; let x = crate::clock::now(); let y = my_crate::grants::x;\n",
    );
    let names: Vec<(usize, String)> = referenced_modules(&text, "crate");
    assert_eq!(
        names,
        [
            (1, "oauth".to_owned()),
            (2, "store".to_owned()),
            (2, "vault".to_owned()),
            (2, "tokens".to_owned()),
            (5, "clock".to_owned()),
        ]
    );
}
