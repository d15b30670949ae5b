//! Resolving the service names an operator types: exact, or short (`api` for
//! `pricescan-api`), with a "did you mean" for anything else.

/// The full service name for `input`, or an error message with a suggestion.
pub fn resolve<'a>(input: &str, services: &'a [String]) -> Result<&'a str, String> {
    if let Some(exact) = services.iter().find(|s| s.as_str() == input) {
        return Ok(exact);
    }
    let short: Vec<&String> = services.iter().filter(|s| short_name(s) == input).collect();
    if let [one] = short.as_slice() {
        return Ok(one);
    }
    let mut message = format!("no such service: {input}");
    if let Some(best) = suggest(input, services) {
        message.push_str(&format!(" (did you mean {best}?)"));
    }
    Err(message)
}

/// The part after the project prefix: `pricescan-api` → `api`.
pub fn short_name(service: &str) -> &str {
    service.split_once('-').map_or(service, |(_, rest)| rest)
}

fn suggest<'a>(input: &str, services: &'a [String]) -> Option<&'a str> {
    services
        .iter()
        .map(|s| {
            let full = strsim::jaro_winkler(input, s);
            let short = strsim::jaro_winkler(input, short_name(s));
            (full.max(short), s.as_str())
        })
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services() -> Vec<String> {
        [
            "pricescan-api",
            "pricescan-mysql",
            "pricescan-redis",
            "pricescan-nginx",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn exact_and_short_names() {
        let s = services();
        assert_eq!(resolve("pricescan-api", &s), Ok("pricescan-api"));
        assert_eq!(resolve("api", &s), Ok("pricescan-api"));
        assert_eq!(resolve("redis", &s), Ok("pricescan-redis"));
    }

    #[test]
    fn unknown_names_get_a_suggestion() {
        let s = services();
        let err = resolve("mysq", &s).unwrap_err();
        assert!(err.contains("did you mean pricescan-mysql?"), "{err}");
        let err = resolve("pricescan-ngnix", &s).unwrap_err();
        assert!(err.contains("did you mean pricescan-nginx?"), "{err}");
        let err = resolve("zzzzzz", &s).unwrap_err();
        assert_eq!(err, "no such service: zzzzzz");
    }
}
