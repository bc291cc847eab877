#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| reportd_fuzz::decode_ndjson(data));
