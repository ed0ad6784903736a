//! The layering `ARCHITECTURE.md` promises, checked on the source: no domain module uses an
//! adapter, and the top-level modules depend on each other without a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its non-test code names (`crate::x`, `super::x` from
/// a folder's files resolve to the folder itself and are not counted).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name.ends_with("_tests.rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap();
            let first = relative.components().next().unwrap().as_os_str().to_string_lossy();
            let top = first.trim_end_matches(".rs").to_owned();
            if top == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may use any module (an adapter as a test double, for instance).
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let deps = graph.entry(top.clone()).or_default();
            for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
                let mut rest = line;
                while let Some(at) = rest.find("crate::") {
                    rest = &rest[at + "crate::".len()..];
                    let module: String =
                        rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if !module.is_empty() && module != top {
                        deps.insert(module);
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn no_domain_module_uses_an_adapter() {
    let users: Vec<String> = module_graph()
        .into_iter()
        .filter(|(m, deps)| m != "adapters" && deps.contains("adapters"))
        .map(|(m, _)| m)
        .collect();
    assert!(users.is_empty(), "these modules use crate::adapters: {users:?}");
}

#[test]
fn top_level_modules_have_no_dependency_cycle() {
    let graph = module_graph();
    assert!(graph.len() > 10, "the walk found the modules: {graph:?}");
    // Depth-first search with colours: a grey node reached again closes a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(1) => {
                let start = path.iter().position(|p| p == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(node.to_owned(), 1);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut state, &mut Vec::new()) {
            panic!("dependency cycle between top-level modules: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn every_function_that_writes_state_says_which_writer_it_is() {
    // IAM holds each function to its own partitions, its alert records under `alert#<writer>`:
    // a function that forgot to say would write the CLI's partition and be denied in AWS.
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut checked = 0;
    for entry in std::fs::read_dir(&functions).unwrap() {
        let main = entry.unwrap().path().join("src/main.rs");
        let text = std::fs::read_to_string(&main).unwrap();
        if text.contains("DynamoStateStore") {
            checked += 1;
            assert!(
                text.contains("records::set_writer(env!(\"CARGO_BIN_NAME\"))"),
                "{} writes the state table without records::set_writer",
                main.display()
            );
        }
    }
    assert_eq!(
        checked, 5,
        "access-sync, grants, signin-anomaly, scim-token-rotation, integration-health"
    );
}
