//! Dependency order of services: start order, stop order, and cycle detection.

use std::collections::{BTreeMap, BTreeSet};

/// Services grouped into waves: every service's dependencies are in earlier waves, so the
/// services of one wave can start concurrently.
pub fn start_waves(deps: &BTreeMap<String, BTreeSet<String>>) -> Result<Vec<Vec<String>>, Vec<String>> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut waves = Vec::new();
    while placed.len() < deps.len() {
        let wave: Vec<String> = deps
            .iter()
            .filter(|(name, needs)| {
                !placed.contains(name.as_str())
                    && needs
                        .iter()
                        .all(|d| placed.contains(d.as_str()) || !deps.contains_key(d))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if wave.is_empty() {
            return Err(find_cycle(deps, &placed));
        }
        placed.extend(deps.keys().filter(|k| wave.contains(k)).map(String::as_str));
        waves.push(wave);
    }
    Ok(waves)
}

/// One cycle among the services not yet placed, as a path that ends where it starts.
fn find_cycle(deps: &BTreeMap<String, BTreeSet<String>>, placed: &BTreeSet<&str>) -> Vec<String> {
    let start = deps
        .keys()
        .find(|k| !placed.contains(k.as_str()))
        .cloned()
        .unwrap_or_default();
    let mut path = vec![start];
    loop {
        let last = path.last().cloned().unwrap_or_default();
        let next = deps
            .get(&last)
            .and_then(|needs| {
                needs
                    .iter()
                    .find(|d| deps.contains_key(*d) && !placed.contains(d.as_str()))
            })
            .cloned()
            .unwrap_or_default();
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle = path.split_off(pos);
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}

/// `selected` plus everything it depends on, transitively.
pub fn with_dependencies(deps: &BTreeMap<String, BTreeSet<String>>, selected: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = selected.to_vec();
    while let Some(name) = todo.pop() {
        if out.insert(name.clone()) {
            todo.extend(deps.get(&name).into_iter().flatten().cloned());
        }
    }
    out
}

/// Services that depend on `name`, directly or not.
pub fn dependents(deps: &BTreeMap<String, BTreeSet<String>>, name: &str) -> BTreeSet<String> {
    deps.keys()
        .filter(|k| k.as_str() != name && with_dependencies(deps, &[(*k).clone()]).contains(name))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn waves_follow_dependencies_and_group_independent_services() {
        let g = graph(&[
            ("api", &["mysql", "redis"]),
            ("mysql", &[]),
            ("redis", &[]),
            ("nginx", &["api"]),
            ("prometheus", &[]),
            ("grafana", &["prometheus"]),
        ]);
        let waves = start_waves(&g).unwrap();
        assert_eq!(
            waves,
            vec![
                vec!["mysql".to_string(), "prometheus".into(), "redis".into()],
                vec!["api".to_string(), "grafana".into()],
                vec!["nginx".to_string()],
            ]
        );
    }

    #[test]
    fn a_cycle_is_named() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        let cycle = start_waves(&g).unwrap_err();
        assert_eq!(cycle, vec!["a", "b", "c", "a"]);
        let g = graph(&[("a", &["a"])]);
        assert_eq!(start_waves(&g).unwrap_err(), vec!["a", "a"]);
    }

    #[test]
    fn dependencies_outside_the_selection_do_not_block() {
        // A dependency on a service of an inactive profile is checked elsewhere.
        let g = graph(&[("a", &["elsewhere"])]);
        assert_eq!(start_waves(&g).unwrap(), vec![vec!["a".to_string()]]);
    }

    #[test]
    fn closure_and_dependents() {
        let g = graph(&[
            ("nginx", &["api"]),
            ("api", &["mysql"]),
            ("mysql", &[]),
            ("x", &[]),
        ]);
        let all = with_dependencies(&g, &["nginx".into()]);
        assert_eq!(all.into_iter().collect::<Vec<_>>(), vec!["api", "mysql", "nginx"]);
        let deps = dependents(&g, "mysql");
        assert_eq!(deps.into_iter().collect::<Vec<_>>(), vec!["api", "nginx"]);
    }
}
