//! Feeds arbitrary bytes to the ingestion body parser. It must never
//! panic, and every rejection must be a 4xx with a message.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    casola_parsers::job_batch::check_any_body(data);
});
