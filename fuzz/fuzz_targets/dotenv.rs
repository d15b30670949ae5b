//! Any bytes as `.env.prod`: an error that never quotes the secret planted in it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pricescan_ctl::stack::dotenv;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let planted = format!("{text}\nDB_PASSWORD: fuzz-planted-secret\n");
    if let Err(e) = dotenv::parse(&planted, &|_| None) {
        assert!(!e.to_string().contains("fuzz-planted-secret"));
    }
});
