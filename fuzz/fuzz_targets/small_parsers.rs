//! Durations, sizes, log timestamps, interpolation, the release log, manifests, S3 URLs and
//! age recipients: every one of them on the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pricescan_ctl::backup::catalog::Manifest;
use pricescan_ctl::deploy::release;
use pricescan_ctl::engine::loglines;
use pricescan_ctl::stack::{interpolate, node_engines, offsite, units};

fuzz_target!(|data: &[u8]| {
    let _ = release::parse(data);
    let _ = serde_json::from_slice::<Manifest>(data);
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = units::parse_duration(s);
    let _ = units::parse_human_duration(s);
    let _ = units::parse_bytes(s);
    let _ = loglines::parse_nanos(s);
    let _ = interpolate::interpolate(s, &|k| (k == "A").then(|| "a".into()));
    let _ = offsite::parse_url(s);
    let _ = offsite::parse_recipients(s);
    let _ = node_engines::parse(s);
});
