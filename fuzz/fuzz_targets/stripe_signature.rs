//! Feeds arbitrary headers, bodies and clocks to the `Stripe-Signature`
//! check. It must never panic, and an unsigned input must never verify.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    casola_parsers::stripe_signature::check_any_header(data);
});
